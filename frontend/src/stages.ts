/** The publish job's stages and how each one is shown (pure; see __tests__/stages.spec.ts). */
import { IJob, IScanReport } from './types';

export const PUBLISH_STAGES = [
  'compose',
  'scan',
  'attest',
  'sign',
  'tag',
  'record'
];

export type StageStatus = 'pending' | 'active' | 'done' | 'failed' | 'skipped';

export interface IStageView {
  name: string;
  status: StageStatus;
  /** `done/total` of the active stage, when the server reports it. */
  progress: string;
}

function seenStages(job: IJob<unknown>): string[] {
  const out: string[] = [];
  for (const s of job.stages ?? []) {
    const name = typeof s === 'string' ? s : s?.name;
    if (name && !out.includes(name)) {
      out.push(name);
    }
  }
  if (job.stage && !out.includes(job.stage)) {
    out.push(job.stage);
  }
  return out;
}

/**
 * The stage list for a job: stages before the current one are done, the current one active (or
 * failed), later ones pending; once the job is done, stages it never reported are skipped (sign
 * without a key). Stages the server reports that are not in `order` are appended.
 */
export function stageViews(
  job: IJob<unknown> | null,
  order: string[] = PUBLISH_STAGES
): IStageView[] {
  const names = [...order];
  const seen = job ? seenStages(job) : [];
  for (const s of seen) {
    if (!names.includes(s)) {
      names.push(s);
    }
  }
  if (!job) {
    return names.map(name => ({ name, status: 'pending', progress: '' }));
  }
  const current = job.stage ?? (seen.length ? seen[seen.length - 1] : null);
  const currentIndex = current ? names.indexOf(current) : -1;
  // only a job that reports its stage history can tell a skipped stage from a done one
  const history = (job.stages ?? []).length > 0;
  return names.map((name, i) => {
    let status: StageStatus;
    if (job.state === 'done') {
      status = !history || seen.includes(name) ? 'done' : 'skipped';
    } else if (i < currentIndex) {
      status = history && !seen.includes(name) ? 'skipped' : 'done';
    } else if (i === currentIndex) {
      status = job.state === 'failed' ? 'failed' : 'active';
    } else {
      status = 'pending';
    }
    let progress = '';
    if (status === 'active' && job.total) {
      progress = `${job.done ?? 0}/${job.total}`;
    }
    return { name, status, progress };
  });
}

export const STAGE_ICONS: Record<StageStatus, string> = {
  pending: '○',
  active: '◐',
  done: '✓',
  failed: '✗',
  skipped: '–'
};

export interface IBlocked {
  error: string;
  report: IScanReport | null;
  threshold: string | null;
}

export type JobOutcome<R> =
  | { kind: 'running' }
  | { kind: 'done'; result: R }
  | { kind: 'blocked'; blocked: IBlocked }
  | { kind: 'failed'; error: string };

/**
 * What a job ended as. A policy block is a failed job whose error is
 * `{error, blocked: true, report, threshold}` (the fields may also sit on the job itself).
 */
export function jobOutcome<R>(job: IJob<R> | null): JobOutcome<R> {
  if (!job || (job.state !== 'done' && job.state !== 'failed')) {
    return { kind: 'running' };
  }
  if (job.state === 'done') {
    return { kind: 'done', result: job.result as R };
  }
  const flat = job as unknown as Record<string, unknown>;
  const err = job.error;
  const src: Record<string, unknown> | null =
    err && typeof err === 'object'
      ? (err as unknown as Record<string, unknown>)
      : flat.blocked
        ? flat
        : null;
  const line = (v: unknown) =>
    (typeof v === 'string'
      ? v
      : v
        ? JSON.stringify(v)
        : 'the job failed'
    ).split('\n')[0];
  if (src && src.blocked) {
    return {
      kind: 'blocked',
      blocked: {
        error: line(src.error ?? err),
        report: (src.report as IScanReport) ?? null,
        threshold: (src.threshold as string) ?? null
      }
    };
  }
  return { kind: 'failed', error: line(src ? src.error : err) };
}
