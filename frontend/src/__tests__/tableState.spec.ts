import {
  currentToken,
  hasNext,
  hasPrev,
  initialTableState,
  ITableState,
  orderBy,
  runsQuery,
  sortKey,
  TableAction,
  tableReducer
} from '../tableState';

const run = (actions: TableAction[], s: ITableState = initialTableState) =>
  actions.reduce(tableReducer, s);

const opts = { experiment: '1', metrics: ['auc'], params: ['C'], pageSize: 25 };

describe('sorting', () => {
  it('defaults to newest first', () => {
    expect(orderBy(initialTableState)).toBe('attributes.start_time DESC');
  });
  it('a new column sorts descending, the same column toggles', () => {
    let s = run([{ type: 'sort', column: 'metrics.auc' }]);
    expect(orderBy(s)).toBe('metrics.auc DESC');
    s = tableReducer(s, { type: 'sort', column: 'metrics.auc' });
    expect(orderBy(s)).toBe('metrics.auc ASC');
  });
  it('quotes keys that need it and ignores unsortable columns', () => {
    expect(sortKey('params.my param')).toBe('params.`my param`');
    expect(sortKey('metrics.val/loss')).toBe('metrics.`val/loss`');
    expect(sortKey('kit')).toBeNull();
    expect(sortKey('metrics.')).toBeNull();
    const s = run([{ type: 'sort', column: 'kit' }]);
    expect(s).toBe(initialTableState);
  });
  it('sorting goes back to the first page', () => {
    const s = run([
      { type: 'loaded', rowCount: 25, nextToken: 't1' },
      { type: 'next' },
      { type: 'sort', column: 'run_name' }
    ]);
    expect(s.page).toBe(0);
    expect(currentToken(s)).toBe('');
  });
});

describe('paging', () => {
  it('walks forward with next tokens and back', () => {
    let s = run([{ type: 'loaded', rowCount: 25, nextToken: 't1' }]);
    expect(hasPrev(s)).toBe(false);
    expect(hasNext(s)).toBe(true);
    s = run(
      [
        { type: 'next' },
        { type: 'loaded', rowCount: 25, nextToken: 't2' },
        { type: 'next' }
      ],
      s
    );
    expect(s.page).toBe(2);
    expect(currentToken(s)).toBe('t2');
    s = run([{ type: 'loaded', rowCount: 3, nextToken: null }], s);
    expect(hasNext(s)).toBe(false);
    expect(tableReducer(s, { type: 'next' })).toBe(s);
    s = run([{ type: 'prev' }], s);
    expect(currentToken(s)).toBe('t1');
    s = run([{ type: 'prev' }, { type: 'prev' }], s);
    expect(s.page).toBe(0);
  });
  it('going forward again after going back replaces the stale tokens', () => {
    const s = run([
      { type: 'loaded', rowCount: 2, nextToken: 'a' },
      { type: 'next' },
      { type: 'loaded', rowCount: 2, nextToken: 'b' },
      { type: 'prev' },
      { type: 'loaded', rowCount: 2, nextToken: 'a2' },
      { type: 'next' }
    ]);
    expect(s.tokens).toEqual(['', 'a2']);
  });
  it('a new filter resets paging; the same filter is a no-op', () => {
    let s = run([
      { type: 'loaded', rowCount: 2, nextToken: 'a' },
      { type: 'next' }
    ]);
    s = tableReducer(s, { type: 'filter', filter: "params.C = '1'" });
    expect(s.page).toBe(0);
    expect(tableReducer(s, { type: 'filter', filter: "params.C = '1'" })).toBe(
      s
    );
  });
});

describe('selection', () => {
  const loaded = run([{ type: 'loaded', rowCount: 3, nextToken: null }]);
  it('arrow keys move and clamp', () => {
    let s = tableReducer(loaded, { type: 'move', delta: 1 });
    expect(s.selected).toBe(0);
    s = run(
      [
        { type: 'move', delta: 1 },
        { type: 'move', delta: 1 },
        { type: 'move', delta: 1 }
      ],
      s
    );
    expect(s.selected).toBe(2);
    s = run([{ type: 'move', delta: -5 }], s);
    expect(s.selected).toBe(0);
  });
  it('up with nothing selected picks the last row', () => {
    expect(tableReducer(loaded, { type: 'move', delta: -1 }).selected).toBe(2);
  });
  it('home, end, select and bounds', () => {
    expect(tableReducer(loaded, { type: 'end' }).selected).toBe(2);
    expect(run([{ type: 'end' }, { type: 'home' }], loaded).selected).toBe(0);
    expect(tableReducer(loaded, { type: 'select', index: 1 }).selected).toBe(1);
    expect(tableReducer(loaded, { type: 'select', index: 7 })).toBe(loaded);
  });
  it('fewer rows after a reload clamp the selection; none clears it', () => {
    let s = run(
      [{ type: 'end' }, { type: 'loaded', rowCount: 2, nextToken: null }],
      loaded
    );
    expect(s.selected).toBe(1);
    s = tableReducer(s, { type: 'loaded', rowCount: 0, nextToken: null });
    expect(s.selected).toBe(-1);
    expect(tableReducer(s, { type: 'move', delta: 1 })).toBe(s);
  });
  it('reset clears page and selection', () => {
    const s = run([{ type: 'select', index: 1 }, { type: 'reset' }], loaded);
    expect(s.selected).toBe(-1);
    expect(s.rowCount).toBe(0);
  });
});

describe('runsQuery', () => {
  it('the first page', () => {
    expect(runsQuery(initialTableState, opts)).toEqual({
      experiment: '1',
      max_results: '25',
      metrics: 'auc',
      params: 'C',
      order_by: 'attributes.start_time DESC'
    });
  });
  it('filter, sort and page token', () => {
    const s = run([
      { type: 'filter', filter: '  metrics.auc > 0.9 ' },
      { type: 'sort', column: 'metrics.auc' },
      { type: 'loaded', rowCount: 25, nextToken: 'tok' },
      { type: 'next' }
    ]);
    expect(runsQuery(s, { ...opts, metrics: [], params: [] })).toEqual({
      experiment: '1',
      max_results: '25',
      filter: 'metrics.auc > 0.9',
      order_by: 'metrics.auc DESC',
      page_token: 'tok'
    });
  });
});
