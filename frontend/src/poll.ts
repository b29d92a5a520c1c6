/**
 * Polling a server job (`GET jobs/<id>`) until it is done or failed: every `intervalMs` (~400 ms)
 * while it makes progress, slowing down by `backoff` up to `maxIntervalMs` while nothing changes or
 * a request fails; `maxErrors` failed requests in a row give up. An AbortSignal cancels the loop
 * (the promise rejects with a `PollCancelled`). Pure: `fetchJob` and `sleep` are injected.
 */
import { IJob } from './types';

export class PollCancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'PollCancelled';
  }
}

export interface IPollOptions<R> {
  intervalMs?: number;
  maxIntervalMs?: number;
  backoff?: number;
  maxErrors?: number;
  signal?: AbortSignal;
  onUpdate?: (job: IJob<R>) => void;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** setTimeout as a promise that an AbortSignal interrupts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new PollCancelled());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new PollCancelled());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function progressKey(job: IJob<unknown>): string {
  return `${job.state}|${job.stage ?? ''}|${job.done ?? ''}|${job.total ?? ''}`;
}

export function isFinished(job: IJob<unknown>): boolean {
  return job.state === 'done' || job.state === 'failed';
}

export async function pollJob<R>(
  fetchJob: (signal?: AbortSignal) => Promise<IJob<R>>,
  options: IPollOptions<R> = {}
): Promise<IJob<R>> {
  const base = options.intervalMs ?? 400;
  const max = options.maxIntervalMs ?? 3000;
  const factor = options.backoff ?? 1.5;
  const maxErrors = options.maxErrors ?? 5;
  const wait = options.sleep ?? sleep;
  const signal = options.signal;
  let interval = base;
  let errors = 0;
  let last = '';
  for (;;) {
    if (signal?.aborted) {
      throw new PollCancelled();
    }
    let job: IJob<R> | null = null;
    try {
      job = await fetchJob(signal);
      errors = 0;
    } catch (e) {
      if (signal?.aborted || e instanceof PollCancelled) {
        throw new PollCancelled();
      }
      errors++;
      if (errors >= maxErrors) {
        throw e;
      }
      interval = Math.min(max, interval * factor);
    }
    if (job) {
      if (signal?.aborted) {
        throw new PollCancelled();
      }
      options.onUpdate?.(job);
      if (isFinished(job)) {
        return job;
      }
      const key = progressKey(job);
      interval = key === last ? Math.min(max, interval * factor) : base;
      last = key;
    }
    await wait(interval, signal);
  }
}
