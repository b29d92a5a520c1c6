import * as React from 'react';
import { Button } from '@jupyterlab/ui-components';

import { checkLines, kitBadge } from '../badges';
import { formatSize, formatTime, oneLine, shortDigest } from '../format';
import { PanelModel } from '../model';
import { pollJob, PollCancelled } from '../poll';
import { kitRows } from '../request';
import { jobOutcome } from '../stages';
import { IKitRow, IVerifyResult } from '../types';
import { Badge, CopyButton, Empty, ErrorBanner, Loading } from './common';

interface IVerifyState {
  result?: IVerifyResult;
  error?: string;
}

/** `repository@digest`: what a kit row is verified as. */
export function kitReference(repository: string, kit: IKitRow): string {
  return `${repository}@${kit.digest}`;
}

export function KitsView(props: { model: PanelModel }): JSX.Element {
  const { model } = props;
  const { api } = model;
  const [repository, setRepository] = React.useState(model.defaultRepository());
  const [kits, setKits] = React.useState<IKitRow[] | null>(null);
  const [loading, setLoading] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const [verified, setVerified] = React.useState<Record<string, IVerifyState>>(
    {}
  );
  const [expanded, setExpanded] = React.useState<string | null>(null);
  const abort = React.useRef<AbortController | null>(null);

  React.useEffect(() => () => abort.current?.abort(), []);

  const load = async (repo: string) => {
    abort.current?.abort();
    const ctrl = new AbortController();
    abort.current = ctrl;
    setError(null);
    setVerified({});
    setExpanded(null);
    if (!repo.trim()) {
      setKits(null);
      return;
    }
    setLoading(true);
    let rows: IKitRow[];
    try {
      rows = kitRows(await api.kits(repo.trim()));
    } catch (e) {
      if (!ctrl.signal.aborted) {
        setError(oneLine(e));
        setKits(null);
        setLoading(false);
      }
      return;
    }
    if (ctrl.signal.aborted) {
      return;
    }
    setKits(rows);
    setLoading(false);
    // verify published kits two at a time (deep=false: signatures and attestations only)
    const queue = rows.filter(k => !k.draft);
    const worker = async () => {
      for (let k = queue.shift(); k; k = queue.shift()) {
        const kit = k;
        try {
          const job = await api.verify(kitReference(repo.trim(), kit), false);
          const final = await pollJob<IVerifyResult>(
            s => api.job<IVerifyResult>(job.id, s),
            {
              signal: ctrl.signal
            }
          );
          const out = jobOutcome(final);
          const state: IVerifyState =
            out.kind === 'done'
              ? { result: out.result }
              : {
                  error:
                    out.kind === 'blocked'
                      ? out.blocked.error
                      : out.kind === 'failed'
                        ? out.error
                        : 'unknown'
                };
          setVerified(v => ({ ...v, [kit.digest]: state }));
        } catch (e) {
          if (e instanceof PollCancelled || ctrl.signal.aborted) {
            return;
          }
          setVerified(v => ({ ...v, [kit.digest]: { error: oneLine(e) } }));
        }
      }
    };
    await Promise.all([worker(), worker()]);
  };

  React.useEffect(() => {
    void load(repository);
  }, []);

  return (
    <div className="jp-ModelKits-view" data-testid="mk-kits-view">
      <form
        className="jp-ModelKits-toolbar"
        onSubmit={e => {
          e.preventDefault();
          void load(repository);
        }}
      >
        <input
          className="jp-mod-styled jp-ModelKits-input jp-ModelKits-grow"
          placeholder="repository: oci:/path/kits/name or registry.example/ns/name"
          data-testid="mk-kits-repository"
          value={repository}
          onChange={e => setRepository(e.target.value)}
        />
        <Button
          small
          type="submit"
          data-testid="mk-kits-load"
          disabled={loading}
        >
          List
        </Button>
      </form>
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
      {loading && <Loading what="kits" />}
      {!loading && kits === null && !error && (
        <Empty testid="mk-kits-empty">
          Enter a repository (or set a default repository in the settings).
        </Empty>
      )}
      {!loading && kits !== null && kits.length === 0 && (
        <Empty testid="mk-kits-empty">No kits in this repository.</Empty>
      )}
      {kits !== null && kits.length > 0 && (
        <table className="jp-ModelKits-table" data-testid="mk-kits-table">
          <thead>
            <tr>
              <th>tag</th>
              <th>digest</th>
              <th>size</th>
              <th>created</th>
              <th>status</th>
            </tr>
          </thead>
          <tbody>
            {kits.map(k => {
              const v = verified[k.digest];
              const badge = k.draft
                ? {
                    kind: 'draft' as const,
                    label: 'draft',
                    title: 'a draft kit (not published)'
                  }
                : kitBadge(k, v?.result, v?.error);
              const open = expanded === k.digest;
              return (
                <React.Fragment key={`${k.digest}/${k.tag ?? ''}`}>
                  <tr
                    data-testid="mk-kit-row"
                    data-digest={k.digest}
                    className={open ? 'jp-mod-selected' : undefined}
                    aria-expanded={open}
                    onClick={() => setExpanded(open ? null : k.digest)}
                  >
                    <td>
                      {open ? '▾ ' : '▸ '}
                      {k.tag || '—'}
                    </td>
                    <td className="jp-ModelKits-mono">
                      {shortDigest(k.digest)}
                      <CopyButton
                        text={kitReference(repository.trim(), k)}
                        label="reference@digest"
                      />
                    </td>
                    <td>{formatSize(k.size)}</td>
                    <td>{formatTime(k.created)}</td>
                    <td>
                      <Badge badge={badge} testid="mk-kit-badge" />
                    </td>
                  </tr>
                  {open && (
                    <tr className="jp-ModelKits-expanded">
                      <td colSpan={5}>
                        {v?.result ? (
                          <CheckList result={v.result} testid="mk-kit-checks" />
                        ) : (
                          <span className="jp-ModelKits-dim">
                            {k.draft
                              ? 'drafts are not verified'
                              : (v?.error ?? 'verifying…')}
                          </span>
                        )}
                      </td>
                    </tr>
                  )}
                </React.Fragment>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** Per-check PASS/FAIL rows, as `mlflow-modelkit verify` prints them. */
export function CheckList(props: {
  result: IVerifyResult;
  testid?: string;
}): JSX.Element {
  const { result } = props;
  return (
    <div data-testid={props.testid ?? 'mk-checks'}>
      <table className="jp-ModelKits-table jp-ModelKits-checks">
        <tbody>
          {checkLines(result).map((c, i) => (
            <tr key={i} data-testid="mk-check-row" data-status={c.status}>
              <td
                className={
                  c.status === 'PASS'
                    ? 'jp-ModelKits-pass'
                    : 'jp-ModelKits-fail'
                }
              >
                {c.status}
              </td>
              <td className="jp-ModelKits-mono">{c.name}</td>
              <td className="jp-ModelKits-wrap">{c.detail}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {(result.notes ?? []).map((n, i) => (
        <div key={i} className="jp-ModelKits-dim">
          NOTE {n}
        </div>
      ))}
    </div>
  );
}
