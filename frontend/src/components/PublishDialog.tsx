import * as React from 'react';
import { Button } from '@jupyterlab/ui-components';

import { oneLine, parseAccept, pinnedReference } from '../format';
import { PanelModel } from '../model';
import { pollJob, PollCancelled } from '../poll';
import { IPublishRequest } from '../request';
import { jobOutcome, STAGE_ICONS, stageViews } from '../stages';
import { IFinding, IJob, IPublishResult } from '../types';
import { CopyButton, ErrorBanner, FindingsTable } from './common';

/**
 * The publish form, then live progress by stage, then the result. The passphrase lives only in
 * the password input's DOM value: it is read when the request is built, sent, and the input is
 * cleared right after; it is never put in React state, a log or an error.
 */
export function PublishDialog(props: {
  model: PanelModel;
  runId: string;
  onClose: () => void;
}): JSX.Element {
  const { model } = props;
  const { api, settings } = model;
  const [runId, setRunId] = React.useState(props.runId);
  const [models, setModels] = React.useState<string[]>([]);
  const [modelName, setModelName] = React.useState('');
  const [tag, setTag] = React.useState('');
  const [repository, setRepository] = React.useState(
    settings.defaultRepository
  );
  const [keyPath, setKeyPath] = React.useState(settings.keyPath);
  const [registerAs, setRegisterAs] = React.useState('');
  const [accept, setAccept] = React.useState('');
  const [reason, setReason] = React.useState('');
  const [job, setJob] = React.useState<IJob<IPublishResult> | null>(null);
  const [running, setRunning] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const [uiUrl, setUiUrl] = React.useState<string | null>(null);
  const passphraseRef = React.useRef<HTMLInputElement>(null);
  const abort = React.useRef<AbortController | null>(null);

  React.useEffect(() => () => abort.current?.abort(), []);

  React.useEffect(() => {
    if (!runId) {
      setModels([]);
      return;
    }
    let live = true;
    api
      .run(runId)
      .then(d => {
        if (live) {
          const names = (d.models ?? []).map(m => m.name);
          setModels(names);
          setModelName(n => (n && names.includes(n) ? n : (names[0] ?? '')));
        }
      })
      .catch(() => live && setModels([]));
    api
      .serverSettings()
      .then(s => live && setUiUrl(s.mlflow_ui_url || null))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [runId]);

  const submit = async (e?: React.FormEvent) => {
    e?.preventDefault();
    setError(null);
    let acceptList: string[];
    try {
      acceptList = parseAccept(accept);
    } catch (err) {
      setError(oneLine(err));
      return;
    }
    if (!runId.trim() || !tag.trim()) {
      setError('a run id and a tag are required');
      return;
    }
    if (acceptList.length && !reason.trim()) {
      setError(
        'accepting findings needs a reason (it is recorded in the scan attestation)'
      );
      return;
    }
    const body: IPublishRequest = { run_id: runId.trim(), tag: tag.trim() };
    if (modelName) {
      body.model = modelName;
    }
    if (repository.trim()) {
      body.repository = repository.trim();
    }
    if (keyPath.trim()) {
      body.key = keyPath.trim();
    }
    if (registerAs.trim()) {
      body.register_as = registerAs.trim();
    }
    if (acceptList.length) {
      body.accept = acceptList;
      body.reason = reason.trim();
    }
    const input = passphraseRef.current;
    if (input && input.value) {
      body.passphrase = input.value;
    }
    const ctrl = new AbortController();
    abort.current = ctrl;
    setRunning(true);
    setJob(null);
    let started: IJob<IPublishResult>;
    try {
      started = await api.publish(body);
    } catch (err) {
      setError(oneLine(err));
      setRunning(false);
      return;
    } finally {
      delete body.passphrase;
      if (input) {
        input.value = '';
      }
    }
    setJob(started);
    try {
      await pollJob<IPublishResult>(
        s => api.job<IPublishResult>(started.id, s),
        {
          intervalMs: 400,
          signal: ctrl.signal,
          onUpdate: setJob
        }
      );
    } catch (err) {
      if (!(err instanceof PollCancelled)) {
        setError(oneLine(err));
      }
    } finally {
      if (!ctrl.signal.aborted) {
        setRunning(false);
      }
    }
  };

  const outcome = jobOutcome(job);
  const stages = stageViews(job);
  const result = outcome.kind === 'done' ? outcome.result : null;

  // published with findings below the threshold: the result carries the kit's own scan findings
  const findings: IFinding[] | null =
    result && result.verdict && result.verdict !== 'clean'
      ? (result.findings ?? [])
      : null;
  const pinned = result
    ? pinnedReference(result.reference, result.digest, result.pinned)
    : '';
  const runUrl =
    result?.run_url ||
    (uiUrl && runId
      ? `${uiUrl.replace(/\/$/, '')}/#/experiments/${model.experiment?.id ?? '0'}/runs/${runId}`
      : null);

  return (
    <div className="jp-ModelKits-overlay" data-testid="mk-publish-dialog">
      <form
        className="jp-ModelKits-dialog"
        role="dialog"
        aria-label="Publish run"
        onSubmit={submit}
      >
        <div className="jp-ModelKits-dialogHeader">
          <span className="jp-ModelKits-title">Publish run</span>
          <button
            type="button"
            className="jp-ModelKits-linkButton"
            aria-label="Close"
            data-testid="mk-publish-close"
            onClick={props.onClose}
          >
            ×
          </button>
        </div>
        <fieldset disabled={running} className="jp-ModelKits-fieldset">
          <label className="jp-ModelKits-field">
            <span>Run id</span>
            <input
              className="jp-mod-styled"
              data-testid="mk-publish-run"
              value={runId}
              onChange={e => setRunId(e.target.value)}
              required
            />
          </label>
          <label className="jp-ModelKits-field">
            <span>Model</span>
            {models.length ? (
              <select
                className="jp-mod-styled"
                data-testid="mk-publish-model"
                value={modelName}
                onChange={e => setModelName(e.target.value)}
              >
                {models.map(m => (
                  <option key={m} value={m}>
                    {m}
                  </option>
                ))}
              </select>
            ) : (
              <input
                className="jp-mod-styled"
                data-testid="mk-publish-model"
                placeholder="(the run's only model)"
                value={modelName}
                onChange={e => setModelName(e.target.value)}
              />
            )}
          </label>
          <label className="jp-ModelKits-field">
            <span>Tag</span>
            <input
              className="jp-mod-styled"
              data-testid="mk-publish-tag"
              placeholder="v1"
              value={tag}
              onChange={e => setTag(e.target.value)}
              required
            />
          </label>
          <label className="jp-ModelKits-field">
            <span>Repository</span>
            <input
              className="jp-mod-styled"
              data-testid="mk-publish-repository"
              placeholder="(configured default)"
              value={repository}
              onChange={e => setRepository(e.target.value)}
            />
          </label>
          <label className="jp-ModelKits-field">
            <span>Signing key</span>
            <input
              className="jp-mod-styled"
              data-testid="mk-publish-key"
              placeholder="path to a PEM private key (optional)"
              value={keyPath}
              onChange={e => setKeyPath(e.target.value)}
            />
          </label>
          <label className="jp-ModelKits-field">
            <span>Passphrase</span>
            <input
              className="jp-mod-styled"
              type="password"
              autoComplete="off"
              data-testid="mk-publish-passphrase"
              ref={passphraseRef}
            />
          </label>
          <label className="jp-ModelKits-field">
            <span>Register as</span>
            <input
              className="jp-mod-styled"
              data-testid="mk-publish-register"
              placeholder="registered model name (optional)"
              value={registerAs}
              onChange={e => setRegisterAs(e.target.value)}
            />
          </label>
          <label className="jp-ModelKits-field">
            <span>Accept</span>
            <input
              className="jp-mod-styled"
              data-testid="mk-publish-accept"
              placeholder="RULE[:PATH], … (optional)"
              value={accept}
              onChange={e => setAccept(e.target.value)}
            />
          </label>
          {accept.trim() && (
            <label className="jp-ModelKits-field">
              <span>Reason</span>
              <input
                className="jp-mod-styled"
                data-testid="mk-publish-reason"
                value={reason}
                onChange={e => setReason(e.target.value)}
              />
            </label>
          )}
        </fieldset>
        <div className="jp-ModelKits-dialogButtons">
          <Button type="button" minimal onClick={props.onClose}>
            Close
          </Button>
          <Button
            type="submit"
            className="jp-mod-accept"
            disabled={running}
            data-testid="mk-publish-submit"
          >
            {running ? 'Publishing…' : 'Publish'}
          </Button>
        </div>
        <ErrorBanner error={error} />
        {job && (
          <ol className="jp-ModelKits-stages" data-testid="mk-publish-stages">
            {stages.map(s => (
              <li
                key={s.name}
                data-testid={`mk-stage-${s.name}`}
                data-status={s.status}
                className={`jp-ModelKits-stage jp-ModelKits-stage-${s.status}`}
              >
                <span className="jp-ModelKits-stageIcon">
                  {STAGE_ICONS[s.status]}
                </span>{' '}
                {s.name}
                {s.progress && (
                  <span className="jp-ModelKits-dim"> {s.progress}</span>
                )}
              </li>
            ))}
          </ol>
        )}
        {result && (
          <div className="jp-ModelKits-result" data-testid="mk-publish-result">
            <div className="jp-ModelKits-ref">
              <span
                className="jp-ModelKits-mono jp-ModelKits-wrap"
                data-testid="mk-publish-digest"
              >
                {pinned}
              </span>
              <CopyButton
                text={pinned}
                label="reference@digest"
                testid="mk-publish-copy"
              />
            </div>
            <div data-testid="mk-publish-verdict">
              scan: {result.verdict || '—'}
            </div>
            {findings && (
              <FindingsTable findings={findings} testid="mk-findings" />
            )}
            {result.encrypted_for && result.encrypted_for.length > 0 && (
              <div data-testid="mk-publish-encrypted">
                encrypted for {result.encrypted_for.length} recipient
                {result.encrypted_for.length === 1 ? '' : 's'}:{' '}
                <span className="jp-ModelKits-mono">
                  {result.encrypted_for.map(id => id.slice(0, 16)).join(', ')}
                </span>{' '}
                (loads need a recipient key: [encryption] decrypt_keys)
              </div>
            )}
            {result.model_uri && (
              <div className="jp-ModelKits-ref">
                <code
                  className="jp-ModelKits-wrap"
                  data-testid="mk-publish-load-uri"
                >
                  mlflow.pyfunc.load_model("{result.model_uri}")
                </code>
                <CopyButton text={result.model_uri} label="model URI" />
              </div>
            )}
            {result.model_version !== undefined &&
              result.model_version !== null && (
                <div>
                  registered: models:/{registerAs || '…'}/
                  {String(result.model_version)}
                </div>
              )}
            {runUrl && (
              <a
                href={runUrl}
                target="_blank"
                rel="noopener noreferrer"
                data-testid="mk-publish-run-url"
              >
                Open the run in the MLflow UI
              </a>
            )}
          </div>
        )}
        {outcome.kind === 'blocked' && (
          <div
            className="jp-ModelKits-blocked"
            data-testid="mk-publish-blocked"
          >
            <ErrorBanner error={outcome.blocked.error} />
            {outcome.blocked.threshold && (
              <div data-testid="mk-publish-threshold">
                blocked at threshold: <b>{outcome.blocked.threshold}</b>
              </div>
            )}
            <FindingsTable
              findings={outcome.blocked.report?.findings ?? []}
              testid="mk-findings"
            />
          </div>
        )}
        {outcome.kind === 'failed' && (
          <div data-testid="mk-publish-failed">
            <ErrorBanner error={outcome.error} />
          </div>
        )}
      </form>
    </div>
  );
}
