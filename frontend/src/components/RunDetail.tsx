import * as React from 'react';
import { Button } from '@jupyterlab/ui-components';

import {
  draftSections,
  flattenRows,
  formatSize,
  IDraftSection,
  oneLine,
  shortDigest
} from '../format';
import { PanelModel } from '../model';
import { pollJob, PollCancelled } from '../poll';
import { jobOutcome } from '../stages';
import { IJob, IRunDetail, IScanReport } from '../types';
import {
  CopyButton,
  Empty,
  ErrorBanner,
  FindingsTable,
  KeyValueTable,
  Loading
} from './common';

function flavorsOf(f: unknown): string {
  if (Array.isArray(f)) {
    return f.join(', ');
  }
  if (f && typeof f === 'object') {
    return Object.keys(f).join(', ');
  }
  return '—';
}

/** One draft kit (the run's or a logged model's): its reference, layers and their files. */
function DraftKit(props: { section: IDraftSection }): JSX.Element {
  const { section } = props;
  const { draft } = section;
  return (
    <div
      className="jp-ModelKits-draft"
      data-testid="mk-draft"
      data-kind={section.kind}
      data-reference={draft.reference}
    >
      <div className="jp-ModelKits-ref">
        <span className="jp-ModelKits-dim" style={{ whiteSpace: 'nowrap' }}>
          {section.label}:
        </span>{' '}
        <span className="jp-ModelKits-mono jp-ModelKits-wrap">
          {draft.reference}
        </span>
        <CopyButton text={draft.reference} label="reference" />
      </div>
      <table className="jp-ModelKits-table" data-testid="mk-layers">
        <thead>
          <tr>
            <th>path</th>
            <th>size</th>
            <th>sha256</th>
          </tr>
        </thead>
        <tbody>
          {draft.layers.map(l => (
            <React.Fragment key={l.digest}>
              <tr className="jp-ModelKits-layer" data-testid="mk-layer-row">
                <td className="jp-ModelKits-mono" title={l.media_type}>
                  {l.path || l.media_type}
                </td>
                <td>{formatSize(l.size)}</td>
                <td className="jp-ModelKits-mono">
                  {shortDigest(l.digest)}
                  <CopyButton text={l.digest} label="digest" />
                </td>
              </tr>
              {l.error && (
                <tr>
                  <td colSpan={3} className="jp-ModelKits-fail">
                    {l.error}
                  </td>
                </tr>
              )}
              {(l.files ?? []).map(f => (
                <tr key={`${l.digest}/${f.path}`} data-testid="mk-file-row">
                  <td className="jp-ModelKits-mono jp-ModelKits-indent jp-ModelKits-wrap">
                    {f.path}
                  </td>
                  <td>{formatSize(f.size)}</td>
                  <td className="jp-ModelKits-mono">
                    {f.sha256 ? (
                      <>
                        {shortDigest(f.sha256)}
                        <CopyButton text={f.sha256} label="sha256" />
                      </>
                    ) : (
                      '—'
                    )}
                  </td>
                </tr>
              ))}
              {l.files_truncated ? (
                <tr>
                  <td colSpan={3} className="jp-ModelKits-dim">
                    … {l.files_truncated - (l.files ?? []).length} more files
                  </td>
                </tr>
              ) : null}
            </React.Fragment>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function RunDetail(props: {
  model: PanelModel;
  runId: string;
  onBack: () => void;
}): JSX.Element {
  const { model, runId } = props;
  const { api } = model;
  const [detail, setDetail] = React.useState<IRunDetail | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [scanJob, setScanJob] = React.useState<IJob<IScanReport> | null>(null);
  const [scanning, setScanning] = React.useState(false);
  const abort = React.useRef<AbortController | null>(null);

  React.useEffect(() => {
    let live = true;
    setDetail(null);
    api
      .run(runId)
      .then(d => live && setDetail(d))
      .catch(e => live && setError(oneLine(e)));
    return () => {
      live = false;
      abort.current?.abort();
    };
  }, [runId]);

  const scan = async () => {
    abort.current?.abort();
    const ctrl = new AbortController();
    abort.current = ctrl;
    setScanning(true);
    setScanJob(null);
    setError(null);
    try {
      const job = await api.scan(runId);
      const final = await pollJob<IScanReport>(
        s => api.job<IScanReport>(job.id, s),
        {
          signal: ctrl.signal,
          onUpdate: setScanJob
        }
      );
      const outcome = jobOutcome(final);
      if (outcome.kind === 'failed' || outcome.kind === 'blocked') {
        setError(
          outcome.kind === 'failed' ? outcome.error : outcome.blocked.error
        );
      }
    } catch (e) {
      if (!(e instanceof PollCancelled)) {
        setError(oneLine(e));
      }
    } finally {
      if (!ctrl.signal.aborted) {
        setScanning(false);
      }
    }
  };

  const run = detail?.run ?? {};
  // the detail's run has `name` (docs/jupyter.md); a runs-table row has `run_name`
  const title = (run.name as string) || (run.run_name as string) || runId;
  const report = scanJob?.state === 'done' ? scanJob.result : null;
  const sections = draftSections(detail);

  return (
    <div
      className="jp-ModelKits-view"
      data-testid="mk-run-detail"
      data-run-id={runId}
    >
      <div className="jp-ModelKits-toolbar">
        <Button
          small
          minimal
          onClick={props.onBack}
          data-testid="mk-detail-back"
        >
          ‹ Runs
        </Button>
        <span className="jp-ModelKits-title jp-ModelKits-grow" title={runId}>
          {title}
        </span>
        <Button
          small
          className="jp-mod-accept"
          data-testid="mk-detail-publish"
          onClick={() => model.openPublish(runId)}
        >
          Publish…
        </Button>
      </div>
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
      {!detail && !error && <Loading what="run" />}
      {detail && (
        <>
          <h3 className="jp-ModelKits-h">Kit</h3>
          {sections.length ? (
            sections.map(sec => (
              <DraftKit key={sec.draft.reference} section={sec} />
            ))
          ) : (
            <Empty testid="mk-no-draft">
              No draft kit: neither this run's artifacts nor its logged models
              are stored as a ModelKit.
            </Empty>
          )}
          <h3 className="jp-ModelKits-h">Logged models</h3>
          {detail.models.length ? (
            <table className="jp-ModelKits-table" data-testid="mk-models">
              <thead>
                <tr>
                  <th>name</th>
                  <th>flavors</th>
                  <th>model id</th>
                </tr>
              </thead>
              <tbody>
                {detail.models.map(m => (
                  <tr key={m.model_id ?? m.name}>
                    <td>{m.name}</td>
                    <td>{flavorsOf(m.flavors)}</td>
                    <td className="jp-ModelKits-mono">{m.model_id ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>No logged models.</Empty>
          )}
          <h3 className="jp-ModelKits-h">Scan</h3>
          <div className="jp-ModelKits-toolbar">
            <Button
              small
              disabled={scanning}
              data-testid="mk-scan-button"
              onClick={scan}
            >
              {scanning ? 'Scanning…' : 'Scan preview'}
            </Button>
            {scanning && scanJob?.stage && (
              <span data-testid="mk-scan-progress">
                {scanJob.stage}
                {scanJob.total ? ` ${scanJob.done ?? 0}/${scanJob.total}` : ''}
              </span>
            )}
          </div>
          {report && (
            <>
              <div
                className="jp-ModelKits-summary"
                data-testid="mk-scan-summary"
              >
                {report.summary?.files ?? 0} files scanned; highest severity:{' '}
                {report.summary?.max_severity ?? 'none'}
              </div>
              <FindingsTable
                findings={report.findings ?? []}
                testid="mk-findings"
              />
            </>
          )}
          <h3 className="jp-ModelKits-h">Provenance preview</h3>
          {detail.provenance_preview ? (
            <KeyValueTable
              rows={flattenRows(detail.provenance_preview)}
              testid="mk-provenance"
            />
          ) : (
            <Empty>No provenance preview.</Empty>
          )}
        </>
      )}
    </div>
  );
}
