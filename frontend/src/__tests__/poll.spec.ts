import { isFinished, pollJob, PollCancelled, sleep } from '../poll';
import { IJob } from '../types';

type J = IJob<string>;

function job(state: J['state'], extra: Partial<J> = {}): J {
  return { id: 'j1', state, ...extra };
}

/** A fetcher that returns the given responses in turn (an Error is thrown). */
function scripted(responses: Array<J | Error>) {
  const calls: number[] = [];
  let i = 0;
  const fetchJob = async () => {
    calls.push(i);
    const r = responses[Math.min(i++, responses.length - 1)];
    if (r instanceof Error) {
      throw r;
    }
    return r;
  };
  return { fetchJob, calls };
}

function recorder() {
  const waits: number[] = [];
  const fakeSleep = async (ms: number, signal?: AbortSignal) => {
    if (signal?.aborted) {
      throw new PollCancelled();
    }
    waits.push(ms);
  };
  return { waits, fakeSleep };
}

describe('pollJob', () => {
  it('returns the finished job and reports every update', async () => {
    const { fetchJob } = scripted([
      job('queued'),
      job('running', { stage: 'compose', done: 0, total: 2 }),
      job('running', { stage: 'compose', done: 1, total: 2 }),
      job('done', { result: 'ok' })
    ]);
    const { waits, fakeSleep } = recorder();
    const seen: string[] = [];
    const final = await pollJob(fetchJob, {
      sleep: fakeSleep,
      onUpdate: j => seen.push(j.state)
    });
    expect(final.result).toBe('ok');
    expect(seen).toEqual(['queued', 'running', 'running', 'done']);
    expect(waits).toEqual([400, 400, 400]);
  });

  it('backs off while nothing changes, resets on progress, caps at the maximum', async () => {
    const same = job('running', { stage: 'scan', done: 1, total: 9 });
    const { fetchJob } = scripted([
      same,
      same,
      same,
      same,
      same,
      same,
      job('running', { stage: 'sign' }),
      job('failed', { error: 'boom' })
    ]);
    const { waits, fakeSleep } = recorder();
    const final = await pollJob(fetchJob, {
      sleep: fakeSleep,
      intervalMs: 100,
      backoff: 2,
      maxIntervalMs: 500
    });
    expect(final.state).toBe('failed');
    expect(waits).toEqual([100, 200, 400, 500, 500, 500, 100]);
  });

  it('retries failed requests with backoff, gives up after maxErrors in a row', async () => {
    const { fetchJob, calls } = scripted([
      new Error('net'),
      new Error('net'),
      job('done', { result: 'ok' })
    ]);
    const { waits, fakeSleep } = recorder();
    const final = await pollJob(fetchJob, {
      sleep: fakeSleep,
      intervalMs: 100,
      backoff: 2
    });
    expect(final.state).toBe('done');
    expect(calls).toHaveLength(3);
    expect(waits).toEqual([200, 400]);

    const failing = scripted([new Error('down')]);
    await expect(
      pollJob(failing.fetchJob, { sleep: recorder().fakeSleep, maxErrors: 3 })
    ).rejects.toThrow('down');
    expect(failing.calls).toHaveLength(3);
  });

  it('cancels on abort (before the next request)', async () => {
    const ctrl = new AbortController();
    const { fetchJob, calls } = scripted([
      job('running', { stage: 'compose' })
    ]);
    const fakeSleep = async () => {
      ctrl.abort();
    };
    await expect(
      pollJob(fetchJob, { sleep: fakeSleep, signal: ctrl.signal })
    ).rejects.toBeInstanceOf(PollCancelled);
    expect(calls).toHaveLength(1);
  });

  it('an already aborted signal never fetches', async () => {
    const ctrl = new AbortController();
    ctrl.abort();
    const { fetchJob, calls } = scripted([job('done')]);
    await expect(
      pollJob(fetchJob, { signal: ctrl.signal })
    ).rejects.toBeInstanceOf(PollCancelled);
    expect(calls).toHaveLength(0);
  });

  it('a request failing because of the abort is a cancellation, not an error', async () => {
    const ctrl = new AbortController();
    const fetchJob = async () => {
      ctrl.abort();
      throw new Error('AbortError');
    };
    await expect(
      pollJob<string>(fetchJob, { signal: ctrl.signal })
    ).rejects.toBeInstanceOf(PollCancelled);
  });

  it('the updates stop after an abort during a request', async () => {
    const ctrl = new AbortController();
    const seen: string[] = [];
    const fetchJob = async () => {
      ctrl.abort();
      return job('running');
    };
    await expect(
      pollJob<string>(fetchJob, {
        signal: ctrl.signal,
        onUpdate: j => seen.push(j.state)
      })
    ).rejects.toBeInstanceOf(PollCancelled);
    expect(seen).toEqual([]);
  });

  it('works with the real timer', async () => {
    const { fetchJob } = scripted([
      job('running'),
      job('done', { result: 'x' })
    ]);
    const t0 = Date.now();
    const final = await pollJob(fetchJob, { intervalMs: 20 });
    expect(final.result).toBe('x');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(15);
  });
});

describe('sleep', () => {
  it('rejects when aborted while waiting', async () => {
    const ctrl = new AbortController();
    const p = sleep(10_000, ctrl.signal);
    ctrl.abort();
    await expect(p).rejects.toBeInstanceOf(PollCancelled);
  });
  it('resolves after the delay', async () => {
    await expect(sleep(5)).resolves.toBeUndefined();
  });
});

describe('isFinished', () => {
  it('done and failed only', () => {
    expect(
      ['queued', 'running', 'done', 'failed'].map(s =>
        isFinished(job(s as J['state']))
      )
    ).toEqual([false, false, true, true]);
  });
});
