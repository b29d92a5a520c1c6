/** Pure formatting helpers (no DOM, no JupyterLab): tested in __tests__/format.spec.ts. */

import type { IDraftKit, IRunDetail } from './types';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1536` → `1.5 KiB`; missing values → `—`. Binary units, one decimal above bytes. */
export function formatSize(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) {
    return '—';
  }
  let n = Math.max(0, bytes);
  let unit = 0;
  while (n >= 1024 && unit < UNITS.length - 1) {
    n /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${n.toFixed(1)} ${UNITS[unit]}`;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * An RFC 3339 time as `YYYY-MM-DD HH:MM:SS` (local time by default, `utc` for tests); missing or
 * unparsable → `—`.
 */
export function formatTime(
  iso: string | null | undefined,
  zone: 'local' | 'utc' = 'local'
): string {
  if (!iso) {
    return '—';
  }
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) {
    return '—';
  }
  const u = zone === 'utc';
  const y = u ? d.getUTCFullYear() : d.getFullYear();
  const mo = (u ? d.getUTCMonth() : d.getMonth()) + 1;
  const da = u ? d.getUTCDate() : d.getDate();
  const h = u ? d.getUTCHours() : d.getHours();
  const mi = u ? d.getUTCMinutes() : d.getMinutes();
  const s = u ? d.getUTCSeconds() : d.getSeconds();
  return `${y}-${pad(mo)}-${pad(da)} ${pad(h)}:${pad(mi)}:${pad(s)}`;
}

/** Milliseconds as `850 ms`, `12.3 s`, `4 min 05 s`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) {
    return '—';
  }
  if (ms < 1000) {
    return `${Math.round(ms)} ms`;
  }
  if (ms < 60_000) {
    return `${(ms / 1000).toFixed(1)} s`;
  }
  const total = Math.round(ms / 1000);
  return `${Math.floor(total / 60)} min ${pad(total % 60)} s`;
}

/** `sha256:0123…` → `sha256:0123456789ab…` (the algorithm and 12 hex digits). */
export function shortDigest(
  digest: string | null | undefined,
  keep = 12
): string {
  if (!digest) {
    return '—';
  }
  const i = digest.indexOf(':');
  const algo = i >= 0 ? digest.slice(0, i + 1) : '';
  const hex = i >= 0 ? digest.slice(i + 1) : digest;
  return hex.length > keep ? `${algo}${hex.slice(0, keep)}…` : digest;
}

/** A reference pinned to its digest: `repo:tag@sha256:…` (kept as is if already pinned). */
export function pinnedReference(
  reference: string,
  digest: string | null | undefined,
  pinned?: string | null
): string {
  if (pinned) {
    return pinned;
  }
  if (!digest || reference.includes('@')) {
    return reference;
  }
  return `${reference}@${digest}`;
}

/** A metric value for a table cell: `null`/NaN → `—`, else at most 4 significant decimals. */
export function formatValue(v: unknown): string {
  if (v === null || v === undefined || v === '') {
    return '—';
  }
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) {
      return '—';
    }
    return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  }
  if (typeof v === 'boolean') {
    return v ? 'yes' : 'no';
  }
  if (typeof v === 'object') {
    return JSON.stringify(v);
  }
  return String(v);
}

/**
 * Split the "accept" box (comma, space or newline separated `RULE[:PATH]`) into entries; a
 * malformed entry throws with a one-line message.
 */
export function parseAccept(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/[\s,]+/)) {
    const entry = raw.trim();
    if (!entry) {
      continue;
    }
    const rule = entry.split(':', 1)[0];
    if (!/^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/i.test(rule)) {
      throw new Error(
        `"${entry}" is not RULE[:PATH] (a rule id such as pickle.unknown-global)`
      );
    }
    out.push(entry);
  }
  return out;
}

/** One line of an error for the banner (first line, trimmed, at most 300 characters). */
export function oneLine(e: unknown): string {
  let s: string;
  if (e instanceof Error) {
    s = e.message;
  } else if (typeof e === 'string') {
    s = e;
  } else if (e && typeof e === 'object' && 'error' in e) {
    s = String((e as { error: unknown }).error);
  } else {
    s = String(e);
  }
  const line = s.split('\n').find(l => l.trim()) ?? '';
  const t = line.trim();
  return t.length > 300 ? `${t.slice(0, 299)}…` : t || 'unknown error';
}

/**
 * A nested JSON value as `[key path, value]` rows for a two-column table (`a.b[0].c`); arrays of
 * scalars are joined, long values cut at `maxValue` characters, at most `maxRows` rows.
 */
export function flattenRows(
  value: unknown,
  maxRows = 200,
  maxValue = 500
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const cut = (s: string) =>
    s.length > maxValue ? `${s.slice(0, maxValue - 1)}…` : s;
  const walk = (v: unknown, key: string) => {
    if (out.length >= maxRows) {
      return;
    }
    if (Array.isArray(v)) {
      if (v.every(x => x === null || typeof x !== 'object')) {
        out.push([key, cut(v.map(x => formatValue(x)).join(', '))]);
      } else {
        v.forEach((x, i) => walk(x, `${key}[${i}]`));
      }
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length === 0) {
        out.push([key, '{}']);
      }
      for (const [k, x] of entries) {
        walk(x, key ? `${key}.${k}` : k);
      }
    } else {
      out.push([
        key || '(value)',
        cut(typeof v === 'string' ? v : formatValue(v))
      ]);
    }
  };
  walk(value, '');
  return out;
}

/**
 * The kit repository behind an experiment's artifact location: `modelkit:///srv/kits/x` →
 * `oci:/srv/kits/x`, `modelkit://HOST/team/x` → `HOST/team/x` (MLflow's `modelkit:/x` form too);
 * anything else (not a ModelKit store) → ''.
 */
export function repositoryFromLocation(
  location: string | null | undefined
): string {
  if (!location) {
    return '';
  }
  let uri = location.trim().split('#')[0].split('?')[0];
  if (/^modelkit:\/[^/]/.test(uri)) {
    uri = `modelkit://${uri.slice('modelkit:'.length)}`;
  }
  if (!uri.startsWith('modelkit://')) {
    return '';
  }
  const body = uri.slice('modelkit://'.length).replace(/\/+$/, '');
  if (!body || body === '/') {
    return '';
  }
  return body.startsWith('/') ? `oci:${body}` : body;
}

/** One draft kit the run detail shows: the run's own, or a logged model's. */
export interface IDraftSection {
  /** `run` for the run's draft, else the logged model's name. */
  kind: 'run' | 'model';
  label: string;
  modelId?: string | null;
  draft: IDraftKit;
}

/**
 * The draft kits of a run detail, the run's first, then each logged model's (in MLflow 3 a logged
 * model lives in a draft kit of its own, `STORE:m-<id>`, and the run's draft is often null). An
 * empty list means the run has no draft kit at all; a kit listed twice (same reference) is shown once.
 */
export function draftSections(
  detail: Pick<IRunDetail, 'draft' | 'models'> | null | undefined
): IDraftSection[] {
  if (!detail) {
    return [];
  }
  const out: IDraftSection[] = [];
  const seen = new Set<string>();
  const add = (section: IDraftSection) => {
    const d = section.draft;
    if (!d || typeof d.reference !== 'string' || !Array.isArray(d.layers)) {
      return;
    }
    if (seen.has(d.reference)) {
      return;
    }
    seen.add(d.reference);
    out.push(section);
  };
  if (detail.draft) {
    add({ kind: 'run', label: 'run artifacts', draft: detail.draft });
  }
  for (const m of detail.models ?? []) {
    if (m && m.draft) {
      add({
        kind: 'model',
        label: `logged model '${m.name}'`,
        modelId: m.model_id ?? null,
        draft: m.draft
      });
    }
  }
  return out;
}
