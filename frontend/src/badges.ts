/** Status badges derived from a runs row or a kit's verify result (pure; see __tests__). */
import { ICheck, IKitRow, IRunRow, IVerifyResult } from './types';

export type BadgeKind =
  | 'draft'
  | 'published'
  | 'signed'
  | 'scan-clean'
  | 'scan-findings'
  | 'verified'
  | 'unsigned'
  | 'locked'
  | 'failed'
  | 'pending'
  | 'error';

export interface IBadge {
  kind: BadgeKind;
  label: string;
  /** Tooltip: the reference, the verdict or the failed checks. */
  title: string;
}

/** The badges of one run: draft or published, signed ✓, scan clean ✓ or findings ✗. */
export function runBadges(row: IRunRow): IBadge[] {
  const out: IBadge[] = [];
  if (row.published) {
    out.push({
      kind: 'published',
      label: 'published',
      title: row.digest
        ? `${row.published}@${row.digest}`
        : String(row.published)
    });
  } else if (row.draft) {
    out.push({
      kind: 'draft',
      label: 'draft',
      title: row.draft_ref
        ? `draft kit ${row.draft_ref}`
        : 'a draft kit (not published)'
    });
  }
  if (row.signed === true) {
    out.push({ kind: 'signed', label: 'signed ✓', title: 'signed at publish' });
  }
  const scan = typeof row.scan === 'string' ? row.scan.trim() : '';
  if (scan) {
    if (/^clean\b/i.test(scan)) {
      out.push({
        kind: 'scan-clean',
        label: 'scan clean ✓',
        title: `scan: ${scan}`
      });
    } else {
      out.push({
        kind: 'scan-findings',
        label: 'findings ✗',
        title: `scan: ${scan}`
      });
    }
  }
  return out;
}

/** Checks that fail only because nothing was signed (the kit is "unsigned", not tampered). */
function isMissingSignature(c: ICheck): boolean {
  return (
    (c.name === 'signature' && /no signature/i.test(c.detail)) ||
    (c.name === 'trusted keys' && /no trusted public keys/i.test(c.detail))
  );
}

/** Checks that fail only because the kit is encrypted and this server holds no recipient key. */
function isLocked(c: ICheck): boolean {
  return /--decrypt-key|not a recipient of this kit/.test(c.detail);
}

/**
 * A kit's badge from `POST verify` (deep=false): verified ✓, unsigned (no signature at all, nothing
 * else failed), encrypted (signed, but only a recipient key reads the rest), or FAILED with the
 * failing checks' names. `undefined` result → pending; `error` → the request itself failed.
 */
export function kitBadge(
  kit: Pick<IKitRow, 'signed' | 'draft' | 'encrypted'>,
  result?: IVerifyResult | null,
  error?: string | null
): IBadge {
  if (error) {
    return { kind: 'error', label: 'error', title: error };
  }
  if (!result) {
    return { kind: 'pending', label: '…', title: 'verifying' };
  }
  if (result.verified) {
    return {
      kind: 'verified',
      label: 'verified ✓',
      title: 'every check passed'
    };
  }
  const failures = result.checks.filter(c => !c.ok);
  const signature = result.checks.find(c => c.name === 'signature');
  if (
    kit.encrypted === true &&
    signature?.ok === true &&
    failures.length > 0 &&
    failures.every(isLocked)
  ) {
    return {
      kind: 'locked',
      label: 'encrypted 🔒',
      title:
        'signed by a trusted key; its attestations and files are encrypted for recipients ' +
        '(set [encryption] decrypt_keys on this server to verify them)\n' +
        failures.map(c => `${c.name}: ${c.detail}`).join('\n')
    };
  }
  if (
    failures.length > 0 &&
    kit.signed !== true &&
    failures.every(
      c => isMissingSignature(c) || c.name.startsWith('attestation')
    )
  ) {
    return {
      kind: 'unsigned',
      label: 'unsigned',
      title: failures.map(c => `${c.name}: ${c.detail}`).join('\n')
    };
  }
  const names = failures.map(c => c.name);
  return {
    kind: 'failed',
    label: names.length ? `FAILED (${names.join(', ')})` : 'FAILED',
    title:
      failures.map(c => `${c.name}: ${c.detail}`).join('\n') || 'no checks ran'
  };
}

export interface ICheckLine {
  status: 'PASS' | 'FAIL';
  name: string;
  detail: string;
}

/** The check lines as `mlflow-modelkit verify` prints them (`PASS  name  detail`). */
export function checkLines(result: IVerifyResult): ICheckLine[] {
  return result.checks.map(c => ({
    status: c.ok ? 'PASS' : 'FAIL',
    name: c.name,
    detail: c.detail
  }));
}

/** Severity order for the findings table (critical first). */
export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];

export function severityRank(s: string): number {
  const i = SEVERITIES.indexOf(s.toLowerCase());
  return i < 0 ? SEVERITIES.length : i;
}
