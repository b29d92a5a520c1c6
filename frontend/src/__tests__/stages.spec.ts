import { jobOutcome, PUBLISH_STAGES, stageViews } from '../stages';
import { IJob } from '../types';

const status = (j: IJob<unknown> | null) =>
  stageViews(j).map(s => `${s.name}:${s.status}`);

describe('stageViews', () => {
  it('all pending before the job exists', () => {
    expect(stageViews(null).map(s => s.status)).toEqual(
      PUBLISH_STAGES.map(() => 'pending')
    );
  });
  it('the current stage is active with its progress, earlier ones done', () => {
    const v = stageViews({
      id: 'j',
      state: 'running',
      stage: 'scan',
      done: 3,
      total: 10,
      stages: ['compose', 'scan']
    });
    expect(v.map(s => s.status)).toEqual([
      'done',
      'active',
      'pending',
      'pending',
      'pending',
      'pending'
    ]);
    expect(v[1].progress).toBe('3/10');
  });
  it('a stage the job jumped over is skipped', () => {
    expect(
      status({
        id: 'j',
        state: 'running',
        stage: 'tag',
        stages: ['compose', 'scan', 'attest', 'tag']
      })
    ).toEqual([
      'compose:done',
      'scan:done',
      'attest:done',
      'sign:skipped',
      'tag:active',
      'record:pending'
    ]);
  });
  it('done: reported stages done, the others skipped', () => {
    expect(
      status({
        id: 'j',
        state: 'done',
        stage: 'record',
        stages: [
          { name: 'compose' },
          { name: 'scan' },
          { name: 'attest' },
          { name: 'tag' },
          { name: 'record' }
        ]
      })
    ).toContain('sign:skipped');
  });
  it('done without any stage report: all done', () => {
    expect(
      stageViews({ id: 'j', state: 'done' }).every(s => s.status === 'done')
    ).toBe(true);
  });
  it('failed: the current stage is failed', () => {
    expect(
      status({ id: 'j', state: 'failed', stage: 'scan', error: 'x' })
    ).toEqual([
      'compose:done',
      'scan:failed',
      'attest:pending',
      'sign:pending',
      'tag:pending',
      'record:pending'
    ]);
  });
  it('unknown stages from the server are appended', () => {
    const v = stageViews({ id: 'j', state: 'running', stage: 'register' });
    expect(v[v.length - 1]).toMatchObject({
      name: 'register',
      status: 'active'
    });
  });
});

describe('jobOutcome', () => {
  it('running', () => {
    expect(jobOutcome(null).kind).toBe('running');
    expect(jobOutcome({ id: 'j', state: 'queued' }).kind).toBe('running');
  });
  it('done carries the result', () => {
    expect(
      jobOutcome({ id: 'j', state: 'done', result: { digest: 'd' } })
    ).toEqual({
      kind: 'done',
      result: { digest: 'd' }
    });
  });
  it('a failed job is one line', () => {
    expect(
      jobOutcome({ id: 'j', state: 'failed', error: 'no such key\ntraceback' })
    ).toEqual({
      kind: 'failed',
      error: 'no such key'
    });
    expect(jobOutcome({ id: 'j', state: 'failed' })).toEqual({
      kind: 'failed',
      error: 'the job failed'
    });
  });
  it('a policy block in the error object', () => {
    const o = jobOutcome({
      id: 'j',
      state: 'failed',
      error: {
        error: 'blocked: high',
        blocked: true,
        report: { findings: [] },
        threshold: 'high'
      }
    });
    expect(o).toEqual({
      kind: 'blocked',
      blocked: {
        error: 'blocked: high',
        report: { findings: [] },
        threshold: 'high'
      }
    });
  });
  it('a policy block with the fields on the job', () => {
    const j = {
      id: 'j',
      state: 'failed',
      error: 'blocked: critical',
      blocked: true,
      threshold: 'medium'
    };
    const o = jobOutcome(j as unknown as IJob<unknown>);
    expect(o.kind).toBe('blocked');
    if (o.kind === 'blocked') {
      expect(o.blocked).toEqual({
        error: 'blocked: critical',
        report: null,
        threshold: 'medium'
      });
    }
  });
  it('an error object that is not a block is a failure line', () => {
    expect(
      jobOutcome({ id: 'j', state: 'failed', error: { error: 'x' } })
    ).toEqual({
      kind: 'failed',
      error: 'x'
    });
  });
});
