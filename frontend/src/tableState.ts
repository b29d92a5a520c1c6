/**
 * The runs table's state: sort, server-side paging with page tokens, filter and keyboard
 * selection. A pure reducer (React's useReducer) plus the query it implies.
 */

export interface ISort {
  column: string;
  ascending: boolean;
}

export interface ITableState {
  sort: ISort | null;
  filter: string;
  /** tokens[i] is the page token of page i ('' for the first page). */
  tokens: string[];
  page: number;
  nextToken: string | null;
  rowCount: number;
  /** Index of the selected row on the current page, -1 for none. */
  selected: number;
}

export const initialTableState: ITableState = {
  sort: { column: 'start_time', ascending: false },
  filter: '',
  tokens: [''],
  page: 0,
  nextToken: null,
  rowCount: 0,
  selected: -1
};

export type TableAction =
  | { type: 'sort'; column: string }
  | { type: 'filter'; filter: string }
  | { type: 'loaded'; rowCount: number; nextToken: string | null | undefined }
  | { type: 'next' }
  | { type: 'prev' }
  | { type: 'select'; index: number }
  | { type: 'move'; delta: number }
  | { type: 'home' }
  | { type: 'end' }
  | { type: 'reset' };

const firstPage = { tokens: [''], page: 0, nextToken: null, selected: -1 };

export function tableReducer(
  state: ITableState,
  action: TableAction
): ITableState {
  switch (action.type) {
    case 'sort': {
      if (!sortKey(action.column)) {
        return state;
      }
      // a new column sorts descending first (newest, best metric); the same column toggles
      const sort =
        state.sort && state.sort.column === action.column
          ? { column: action.column, ascending: !state.sort.ascending }
          : { column: action.column, ascending: false };
      return { ...state, ...firstPage, sort };
    }
    case 'filter':
      if (action.filter === state.filter) {
        return state;
      }
      return { ...state, ...firstPage, filter: action.filter };
    case 'loaded': {
      const selected =
        action.rowCount === 0
          ? -1
          : Math.min(state.selected, action.rowCount - 1);
      return {
        ...state,
        rowCount: action.rowCount,
        nextToken: action.nextToken || null,
        selected
      };
    }
    case 'next':
      if (!state.nextToken) {
        return state;
      }
      return {
        ...state,
        tokens: [...state.tokens.slice(0, state.page + 1), state.nextToken],
        page: state.page + 1,
        nextToken: null,
        selected: -1
      };
    case 'prev':
      if (state.page === 0) {
        return state;
      }
      return { ...state, page: state.page - 1, nextToken: null, selected: -1 };
    case 'select':
      if (action.index < -1 || action.index >= state.rowCount) {
        return state;
      }
      return { ...state, selected: action.index };
    case 'move': {
      if (state.rowCount === 0) {
        return state;
      }
      const from =
        state.selected < 0
          ? action.delta > 0
            ? -1
            : state.rowCount
          : state.selected;
      const to = Math.max(0, Math.min(state.rowCount - 1, from + action.delta));
      return to === state.selected ? state : { ...state, selected: to };
    }
    case 'home':
      return state.rowCount ? { ...state, selected: 0 } : state;
    case 'end':
      return state.rowCount
        ? { ...state, selected: state.rowCount - 1 }
        : state;
    case 'reset':
      return { ...state, ...firstPage, rowCount: 0 };
  }
}

/** The page token of the current page ('' for the first). */
export function currentToken(state: ITableState): string {
  return state.tokens[state.page] ?? '';
}

export function hasPrev(state: ITableState): boolean {
  return state.page > 0;
}

export function hasNext(state: ITableState): boolean {
  return !!state.nextToken;
}

const ATTRIBUTES: Record<string, string> = {
  run_name: 'attributes.run_name',
  status: 'attributes.status',
  start_time: 'attributes.start_time',
  end_time: 'attributes.end_time'
};

function quoteKey(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_.]*$/.test(key)
    ? key
    : `\`${key.replace(/`/g, '')}\``;
}

/** The MLflow `order_by` key of a column, or null if the server cannot sort by it. */
export function sortKey(column: string): string | null {
  if (column in ATTRIBUTES) {
    return ATTRIBUTES[column];
  }
  for (const prefix of ['metrics.', 'params.', 'tags.']) {
    if (column.startsWith(prefix) && column.length > prefix.length) {
      return `${prefix}${quoteKey(column.slice(prefix.length))}`;
    }
  }
  return null;
}

/** `order_by` for the request (`metrics.auc DESC`), '' for the server's default. */
export function orderBy(state: ITableState): string {
  if (!state.sort) {
    return '';
  }
  const key = sortKey(state.sort.column);
  return key ? `${key} ${state.sort.ascending ? 'ASC' : 'DESC'}` : '';
}

/** The query string parameters of `GET runs` for this state. */
export function runsQuery(
  state: ITableState,
  opts: {
    experiment: string;
    metrics: string[];
    params: string[];
    pageSize: number;
  }
): Record<string, string> {
  const q: Record<string, string> = {
    experiment: opts.experiment,
    max_results: String(opts.pageSize)
  };
  if (opts.metrics.length) {
    q.metrics = opts.metrics.join(',');
  }
  if (opts.params.length) {
    q.params = opts.params.join(',');
  }
  if (state.filter.trim()) {
    q.filter = state.filter.trim();
  }
  const ob = orderBy(state);
  if (ob) {
    q.order_by = ob;
  }
  const token = currentToken(state);
  if (token) {
    q.page_token = token;
  }
  return q;
}
