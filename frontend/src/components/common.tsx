import * as React from 'react';
import { Clipboard } from '@jupyterlab/apputils';
import { copyIcon } from '@jupyterlab/ui-components';

import { IBadge, severityRank } from '../badges';
import { IFinding } from '../types';

/** Errors are one line in a banner (dismissable). */
export function ErrorBanner(props: {
  error: string | null;
  onDismiss?: () => void;
}): JSX.Element | null {
  if (!props.error) {
    return null;
  }
  return (
    <div className="jp-ModelKits-error" role="alert" data-testid="mk-error">
      <span className="jp-ModelKits-errorText" title={props.error}>
        {props.error}
      </span>
      {props.onDismiss && (
        <button
          className="jp-ModelKits-linkButton"
          aria-label="Dismiss"
          onClick={props.onDismiss}
        >
          ×
        </button>
      )}
    </div>
  );
}

export function Badge(props: { badge: IBadge; testid?: string }): JSX.Element {
  const { badge } = props;
  return (
    <span
      className={`jp-ModelKits-badge jp-ModelKits-badge-${badge.kind}`}
      title={badge.title}
      data-testid={props.testid ?? `mk-badge-${badge.kind}`}
      data-kind={badge.kind}
    >
      {badge.label}
    </span>
  );
}

export function CopyButton(props: {
  text: string;
  label?: string;
  testid?: string;
}): JSX.Element {
  const [copied, setCopied] = React.useState(false);
  return (
    <button
      className="jp-ModelKits-iconButton"
      title={copied ? 'Copied' : `Copy ${props.label ?? props.text}`}
      aria-label={`Copy ${props.label ?? ''}`.trim()}
      data-testid={props.testid}
      onClick={e => {
        e.stopPropagation();
        Clipboard.copyToSystem(props.text);
        setCopied(true);
        window.setTimeout(() => setCopied(false), 1200);
      }}
    >
      {copied ? (
        '✓'
      ) : (
        <copyIcon.react tag="span" className="jp-ModelKits-copyIcon" />
      )}
    </button>
  );
}

export function Loading(props: { what?: string }): JSX.Element {
  return (
    <div className="jp-ModelKits-loading" data-testid="mk-loading">
      <span className="jp-ModelKits-spinner" aria-hidden="true" /> Loading
      {props.what ? ` ${props.what}` : ''}…
    </div>
  );
}

export function Empty(props: {
  children: React.ReactNode;
  testid?: string;
}): JSX.Element {
  return (
    <div
      className="jp-ModelKits-empty"
      data-testid={props.testid ?? 'mk-empty'}
    >
      {props.children}
    </div>
  );
}

/** The findings of a scan report: severity, rule, path, message, explanation when present. */
export function FindingsTable(props: {
  findings: IFinding[];
  testid?: string;
}): JSX.Element {
  const rows = [...props.findings].sort(
    (a, b) => severityRank(a.severity) - severityRank(b.severity)
  );
  if (rows.length === 0) {
    return (
      <Empty testid={`${props.testid ?? 'mk-findings'}-empty`}>
        No findings: clean.
      </Empty>
    );
  }
  return (
    <div className="jp-ModelKits-tableWrap">
      <table
        className="jp-ModelKits-table"
        data-testid={props.testid ?? 'mk-findings'}
      >
        <thead>
          <tr>
            <th>severity</th>
            <th>rule</th>
            <th>path</th>
            <th>message</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((f, i) => (
            <React.Fragment key={i}>
              <tr data-testid="mk-finding-row" data-severity={f.severity}>
                <td>
                  <span
                    className={`jp-ModelKits-sev jp-ModelKits-sev-${f.severity}`}
                  >
                    {f.severity}
                  </span>
                  {f.accepted !== undefined && f.accepted !== null
                    ? ' (accepted)'
                    : ''}
                </td>
                <td className="jp-ModelKits-mono">{f.rule}</td>
                <td className="jp-ModelKits-mono jp-ModelKits-wrap">
                  {f.path}
                </td>
                <td className="jp-ModelKits-wrap">{f.message}</td>
              </tr>
              {f.explanation && (f.explanation.what || f.explanation.fix) && (
                <tr className="jp-ModelKits-explanation">
                  <td colSpan={4}>
                    {f.explanation.what}
                    {f.explanation.when ? ` (${f.explanation.when})` : ''}
                    {f.explanation.fix ? ` Fix: ${f.explanation.fix}` : ''}
                  </td>
                </tr>
              )}
            </React.Fragment>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Key/value rows (provenance preview, effective configuration). */
export function KeyValueTable(props: {
  rows: Array<[string, string]>;
  testid?: string;
}): JSX.Element {
  return (
    <table
      className="jp-ModelKits-table jp-ModelKits-kv"
      data-testid={props.testid}
    >
      <tbody>
        {props.rows.map(([k, v], i) => (
          <tr key={i}>
            <th className="jp-ModelKits-mono">{k}</th>
            <td className="jp-ModelKits-wrap">{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A value that keeps itself in sync with `value` after `ms` without changes. */
export function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = React.useState(value);
  React.useEffect(() => {
    const t = window.setTimeout(() => setV(value), ms);
    return () => window.clearTimeout(t);
  }, [value, ms]);
  return v;
}
