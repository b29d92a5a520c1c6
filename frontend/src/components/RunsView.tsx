import * as React from 'react';
import { Button, refreshIcon } from '@jupyterlab/ui-components';

import { runBadges } from '../badges';
import { formatTime, formatValue, oneLine } from '../format';
import { PanelModel } from '../model';
import {
  hasNext,
  hasPrev,
  initialTableState,
  runsQuery,
  sortKey,
  tableReducer
} from '../tableState';
import { IExperiment, IRunRow } from '../types';
import { Badge, Empty, ErrorBanner, Loading, useDebounced } from './common';
import { RunDetail } from './RunDetail';

interface IColumn {
  key: string;
  label: string;
  render: (row: IRunRow) => React.ReactNode;
}

function columnsFor(metrics: string[], params: string[]): IColumn[] {
  return [
    {
      key: 'run_name',
      label: 'run',
      render: r => (
        <>
          <div className="jp-ModelKits-runName" title={r.run_id}>
            {r.run_name || r.run_id.slice(0, 8)}
          </div>
          <div className="jp-ModelKits-badges">
            {runBadges(r).map(b => (
              <Badge key={b.kind} badge={b} />
            ))}
          </div>
        </>
      )
    },
    { key: 'status', label: 'status', render: r => formatValue(r.status) },
    {
      key: 'start_time',
      label: 'started',
      render: r => formatTime(r.start_time)
    },
    ...metrics.map(m => ({
      key: `metrics.${m}`,
      label: m,
      render: (r: IRunRow) => formatValue(r[`metrics.${m}`])
    })),
    ...params.map(p => ({
      key: `params.${p}`,
      label: p,
      render: (r: IRunRow) => formatValue(r[`params.${p}`])
    }))
  ];
}

export function RunsView(props: { model: PanelModel }): JSX.Element {
  const { model } = props;
  const { api } = model;
  const settings = model.settings;
  const [experiments, setExperiments] = React.useState<IExperiment[] | null>(
    null
  );
  const [experimentId, setExperimentId] = React.useState<string>(
    model.experiment?.id ?? ''
  );
  const [state, dispatch] = React.useReducer(tableReducer, initialTableState);
  const [rows, setRows] = React.useState<IRunRow[]>([]);
  const [loading, setLoading] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const [filterText, setFilterText] = React.useState('');
  const filter = useDebounced(filterText, 400);
  const [reload, setReload] = React.useState(0);
  const [detail, setDetail] = React.useState<string | null>(null);
  const tableRef = React.useRef<HTMLTableSectionElement>(null);

  React.useEffect(() => {
    let live = true;
    api
      .experiments()
      .then(data => {
        if (!live) {
          return;
        }
        const list = data.experiments ?? [];
        setExperiments(list);
        if (!list.find(e => e.id === experimentId)) {
          const first = list.find(e => e.name !== 'Default') ?? list[0];
          setExperimentId(first ? first.id : '');
        }
      })
      .catch(e => live && setError(oneLine(e)));
    return () => {
      live = false;
    };
  }, [api, settings.trackingUri, reload]);

  React.useEffect(() => {
    model.experiment = experiments?.find(e => e.id === experimentId) ?? null;
  }, [experiments, experimentId]);

  React.useEffect(() => {
    dispatch({ type: 'filter', filter });
  }, [filter]);

  React.useEffect(() => {
    dispatch({ type: 'reset' });
  }, [
    experimentId,
    settings.pageSize,
    settings.metricColumns.join(','),
    settings.paramColumns.join(',')
  ]);

  const query = experimentId
    ? runsQuery(state, {
        experiment: experimentId,
        metrics: settings.metricColumns,
        params: settings.paramColumns,
        pageSize: settings.pageSize
      })
    : null;
  const queryKey = query ? JSON.stringify(query) : '';

  React.useEffect(() => {
    if (!query) {
      setRows([]);
      return;
    }
    const ctrl = new AbortController();
    setLoading(true);
    api
      .runs(query, ctrl.signal)
      .then(page => {
        setRows(page.runs ?? []);
        dispatch({
          type: 'loaded',
          rowCount: (page.runs ?? []).length,
          nextToken: page.next_page_token
        });
        setError(null);
      })
      .catch(e => {
        if (!ctrl.signal.aborted) {
          setRows([]);
          dispatch({ type: 'loaded', rowCount: 0, nextToken: null });
          setError(oneLine(e));
        }
      })
      .finally(() => !ctrl.signal.aborted && setLoading(false));
    return () => ctrl.abort();
  }, [queryKey, reload]);

  const selectedRow = state.selected >= 0 ? rows[state.selected] : undefined;
  React.useEffect(() => {
    model.selectedRun = selectedRow?.run_id ?? null;
    if (state.selected >= 0) {
      tableRef.current
        ?.querySelector(`tr[data-index="${state.selected}"]`)
        ?.scrollIntoView?.({ block: 'nearest' });
    }
  }, [selectedRow?.run_id, state.selected]);

  if (detail) {
    return (
      <RunDetail model={model} runId={detail} onBack={() => setDetail(null)} />
    );
  }

  const columns = columnsFor(settings.metricColumns, settings.paramColumns);
  const onKeyDown = (e: React.KeyboardEvent) => {
    switch (e.key) {
      case 'ArrowDown':
        dispatch({ type: 'move', delta: 1 });
        break;
      case 'ArrowUp':
        dispatch({ type: 'move', delta: -1 });
        break;
      case 'Home':
        dispatch({ type: 'home' });
        break;
      case 'End':
        dispatch({ type: 'end' });
        break;
      case 'PageDown':
        dispatch({ type: 'next' });
        break;
      case 'PageUp':
        dispatch({ type: 'prev' });
        break;
      case 'Enter':
        if (selectedRow) {
          setDetail(selectedRow.run_id);
        }
        break;
      default:
        return;
    }
    e.preventDefault();
  };

  return (
    <div className="jp-ModelKits-view" data-testid="mk-runs-view">
      <div className="jp-ModelKits-toolbar">
        <label className="jp-ModelKits-field jp-ModelKits-grow">
          <span>Experiment</span>
          <select
            className="jp-mod-styled"
            data-testid="mk-experiment-select"
            value={experimentId}
            onChange={e => setExperimentId(e.target.value)}
          >
            {(experiments ?? []).map(x => (
              <option key={x.id} value={x.id}>
                {x.name}
              </option>
            ))}
          </select>
        </label>
        <button
          className="jp-ModelKits-iconButton"
          title="Refresh"
          data-testid="mk-runs-refresh"
          onClick={() => setReload(n => n + 1)}
        >
          <refreshIcon.react tag="span" />
        </button>
      </div>
      <input
        className="jp-mod-styled jp-ModelKits-input"
        type="search"
        placeholder="Filter: metrics.auc > 0.9 and params.C = '1.0'"
        title="MLflow search syntax"
        data-testid="mk-runs-filter"
        value={filterText}
        onChange={e => setFilterText(e.target.value)}
      />
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
      {experiments === null && !error ? (
        <Loading what="experiments" />
      ) : experiments !== null && experiments.length === 0 ? (
        <Empty testid="mk-runs-empty">
          No experiments on this tracking server.
        </Empty>
      ) : (
        <>
          <div className="jp-ModelKits-tableWrap">
            <table
              className="jp-ModelKits-table jp-ModelKits-runs"
              data-testid="mk-runs-table"
              tabIndex={0}
              onKeyDown={onKeyDown}
              aria-busy={loading}
            >
              <thead>
                <tr>
                  {columns.map(c => {
                    const sortable = sortKey(c.key) !== null;
                    const active = state.sort?.column === c.key;
                    return (
                      <th
                        key={c.key}
                        data-testid={`mk-runs-header-${c.key}`}
                        className={
                          sortable ? 'jp-ModelKits-sortable' : undefined
                        }
                        aria-sort={
                          active
                            ? state.sort?.ascending
                              ? 'ascending'
                              : 'descending'
                            : undefined
                        }
                        onClick={() =>
                          sortable && dispatch({ type: 'sort', column: c.key })
                        }
                      >
                        {c.label}
                        {active ? (state.sort?.ascending ? ' ▲' : ' ▼') : ''}
                      </th>
                    );
                  })}
                </tr>
              </thead>
              <tbody ref={tableRef}>
                {rows.map((r, i) => (
                  <tr
                    key={r.run_id}
                    data-index={i}
                    data-testid="mk-run-row"
                    data-run-id={r.run_id}
                    aria-selected={i === state.selected}
                    className={
                      i === state.selected ? 'jp-mod-selected' : undefined
                    }
                    onClick={() => dispatch({ type: 'select', index: i })}
                    onDoubleClick={() => setDetail(r.run_id)}
                  >
                    {columns.map(c => (
                      <td key={c.key}>{c.render(r)}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {loading && rows.length === 0 && <Loading what="runs" />}
          {!loading && !error && rows.length === 0 && (
            <Empty testid="mk-runs-empty">
              {state.filter
                ? 'No runs match the filter.'
                : 'No runs in this experiment.'}
            </Empty>
          )}
          <div className="jp-ModelKits-pager">
            <Button
              small
              minimal
              disabled={!hasPrev(state) || loading}
              data-testid="mk-runs-prev"
              onClick={() => dispatch({ type: 'prev' })}
            >
              ‹ Prev
            </Button>
            <span data-testid="mk-runs-page">page {state.page + 1}</span>
            <Button
              small
              minimal
              disabled={!hasNext(state) || loading}
              data-testid="mk-runs-next"
              onClick={() => dispatch({ type: 'next' })}
            >
              Next ›
            </Button>
            <span className="jp-ModelKits-grow" />
            <Button
              small
              disabled={!selectedRow}
              data-testid="mk-runs-open"
              onClick={() => selectedRow && setDetail(selectedRow.run_id)}
            >
              Details
            </Button>
            <Button
              small
              className="jp-mod-accept"
              disabled={!selectedRow}
              data-testid="mk-runs-publish"
              onClick={() => model.openPublish(selectedRow?.run_id)}
            >
              Publish…
            </Button>
          </div>
        </>
      )}
    </div>
  );
}
