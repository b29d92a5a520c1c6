import * as React from 'react';
import { Button } from '@jupyterlab/ui-components';

import { oneLine } from '../format';
import { PanelModel } from '../model';
import { pollJob, PollCancelled } from '../poll';
import { jobOutcome } from '../stages';
import { IJob, IVerifyResult } from '../types';
import { ErrorBanner } from './common';
import { CheckList } from './KitsView';

export function VerifyBox(props: { model: PanelModel }): JSX.Element {
  const { model } = props;
  const { api } = model;
  const [reference, setReference] = React.useState(
    model.verifyRequest?.reference ?? ''
  );
  const [deep, setDeep] = React.useState(true);
  const [job, setJob] = React.useState<IJob<IVerifyResult> | null>(null);
  const [running, setRunning] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const abort = React.useRef<AbortController | null>(null);
  const inputRef = React.useRef<HTMLInputElement>(null);

  React.useEffect(() => () => abort.current?.abort(), []);

  const run = async (ref: string) => {
    if (!ref.trim()) {
      setError('enter a reference (repository:tag or repository@sha256:…)');
      return;
    }
    abort.current?.abort();
    const ctrl = new AbortController();
    abort.current = ctrl;
    setError(null);
    setJob(null);
    setRunning(true);
    try {
      const started = await api.verify(ref.trim(), deep);
      const final = await pollJob<IVerifyResult>(
        s => api.job<IVerifyResult>(started.id, s),
        {
          signal: ctrl.signal,
          onUpdate: setJob
        }
      );
      const out = jobOutcome(final);
      if (out.kind === 'failed') {
        setError(out.error);
      }
    } catch (e) {
      if (!(e instanceof PollCancelled)) {
        setError(oneLine(e));
      }
    } finally {
      if (!ctrl.signal.aborted) {
        setRunning(false);
      }
    }
  };

  // the "Verify reference…" command
  const serial = model.verifyRequest?.serial ?? 0;
  React.useEffect(() => {
    const req = model.verifyRequest;
    if (req && serial > 0) {
      setReference(req.reference);
      void run(req.reference);
    } else {
      inputRef.current?.focus();
    }
  }, [serial]);

  const result = job?.state === 'done' ? job.result : null;
  return (
    <div className="jp-ModelKits-view" data-testid="mk-verify-view">
      <form
        className="jp-ModelKits-toolbar"
        onSubmit={e => {
          e.preventDefault();
          void run(reference);
        }}
      >
        <input
          ref={inputRef}
          className="jp-mod-styled jp-ModelKits-input jp-ModelKits-grow"
          placeholder="reference: repository:tag or repository@sha256:…"
          data-testid="mk-verify-input"
          value={reference}
          onChange={e => setReference(e.target.value)}
        />
        <Button
          small
          type="submit"
          disabled={running}
          data-testid="mk-verify-button"
        >
          {running ? 'Verifying…' : 'Verify'}
        </Button>
      </form>
      <label className="jp-ModelKits-check">
        <input
          type="checkbox"
          checked={deep}
          data-testid="mk-verify-deep"
          onChange={e => setDeep(e.target.checked)}
        />{' '}
        re-hash every blob (deep)
      </label>
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
      {running && job?.stage && (
        <div className="jp-ModelKits-dim">
          {job.stage}
          {job.total ? ` ${job.done ?? 0}/${job.total}` : ''}
        </div>
      )}
      {result && (
        <div
          data-testid="mk-verify-result"
          data-verified={String(result.verified)}
        >
          <div className="jp-ModelKits-mono jp-ModelKits-wrap">
            {result.reference} {result.digest}
          </div>
          <CheckList result={result} testid="mk-verify-checks" />
          <div
            className={
              result.verified ? 'jp-ModelKits-pass' : 'jp-ModelKits-fail'
            }
            data-testid="mk-verify-verdict"
          >
            {result.verified ? 'verified' : 'NOT verified'}
          </div>
        </div>
      )}
    </div>
  );
}
