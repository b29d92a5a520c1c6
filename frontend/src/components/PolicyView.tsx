import * as React from 'react';

import { formatValue, oneLine } from '../format';
import { PanelModel } from '../model';
import { IServerSettings } from '../types';
import { ErrorBanner, Loading } from './common';

/** Read-only: the tracking URI in use and the effective admin configuration (secrets masked). */
export function PolicyView(props: { model: PanelModel }): JSX.Element {
  const { api } = props.model;
  const [data, setData] = React.useState<IServerSettings | null>(null);
  const [error, setError] = React.useState<string | null>(null);

  React.useEffect(() => {
    let live = true;
    api
      .serverSettings()
      .then(d => live && setData(d))
      .catch(e => live && setError(oneLine(e)));
    return () => {
      live = false;
    };
  }, []);

  const rows = data?.config ?? [];
  return (
    <div className="jp-ModelKits-view" data-testid="mk-policy-view">
      <ErrorBanner error={error} />
      {!data && !error && <Loading what="settings" />}
      {data && (
        <>
          <table className="jp-ModelKits-table jp-ModelKits-kv">
            <tbody>
              <tr>
                <th>tracking URI</th>
                <td
                  className="jp-ModelKits-mono jp-ModelKits-wrap"
                  data-testid="mk-policy-tracking"
                >
                  {formatValue(data.tracking_uri)}
                </td>
              </tr>
              <tr>
                <th>MLflow UI</th>
                <td className="jp-ModelKits-mono jp-ModelKits-wrap">
                  {formatValue(data.mlflow_ui_url)}
                </td>
              </tr>
            </tbody>
          </table>
          <table className="jp-ModelKits-table" data-testid="mk-policy-table">
            <thead>
              <tr>
                <th>setting</th>
                <th>value</th>
                <th>source</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(r => (
                <tr key={r.setting} data-testid="mk-policy-row">
                  <td className="jp-ModelKits-mono">{r.setting}</td>
                  <td className="jp-ModelKits-mono jp-ModelKits-wrap">
                    {formatValue(r.value)}
                  </td>
                  <td className="jp-ModelKits-dim">{r.source ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}
