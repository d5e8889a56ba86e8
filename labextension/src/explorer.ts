import { DataModel } from '@lumino/datagrid';

import { PaneComm, VariablesEvent } from './client';

export const EXPLORER_TARGET = 'positron.dataExplorer';

/** Rows fetched per `get_data_values` request: a screenful or two. */
const PAGE_ROWS = 100;
/** Pages kept; the ones furthest from the last asked for are dropped first. */
const MAX_PAGES = 50;
const FORMAT_OPTIONS = {
  large_num_digits: 2,
  small_num_digits: 4,
  max_integral_digits: 7,
  max_value_length: 1000,
  thousands_sep: ','
};
/** How the contract's special value codes read in a cell. */
const SPECIAL_VALUES: Record<number, string> = {
  0: 'NULL',
  1: 'NA',
  2: 'NaN',
  3: 'NaT',
  4: 'None',
  10: 'inf',
  11: '-inf'
};

interface IColumnSchema {
  column_name: string;
  column_index: number;
  type_display: string;
}

interface IBackendState {
  display_name: string;
  table_shape: { num_rows: number; num_columns: number };
  table_unfiltered_shape: { num_rows: number; num_columns: number };
  row_filters?: { is_valid?: boolean; error_message?: string }[];
}

/** The comparisons the filter line offers; `contains` is a text search. */
export const FILTER_OPS = ['=', '!=', '<', '<=', '>', '>=', 'contains'];

type ColumnValue = string | number;

/** `return_column_profiles`' result for one column (the parts shown here). */
export interface IColumnProfile {
  null_count?: number;
  summary_stats?: {
    type_display: string;
    number_stats?: Record<string, string>;
    string_stats?: { num_empty: number; num_unique: number };
    boolean_stats?: { true_count: number; false_count: number };
    other_stats?: { num_unique?: number };
  };
  small_histogram?: { bin_edges: string[]; bin_counts: number[] };
}

interface IProfilesReturned {
  callback_id: string;
  profiles?: IColumnProfile[];
  error_message?: string;
}

const BARS = '▁▂▃▄▅▆▇█';

/** One line for people: nulls, a histogram, the statistics of the column's kind. */
export function describeProfile(profile: IColumnProfile): string {
  const parts = [`nulls ${profile.null_count ?? '?'}`];
  const stats = profile.summary_stats;
  const numbers = stats?.number_stats;
  if (numbers) {
    for (const key of ['min_value', 'max_value', 'mean', 'median', 'stdev']) {
      if (numbers[key] !== undefined) {
        parts.push(`${key.replace('_value', '')} ${numbers[key]}`);
      }
    }
  } else if (stats?.string_stats) {
    parts.push(`unique ${stats.string_stats.num_unique}`, `empty ${stats.string_stats.num_empty}`);
  } else if (stats?.boolean_stats) {
    const b = stats.boolean_stats;
    parts.push(`true ${b.true_count}`, `false ${b.false_count}`);
  } else if (stats?.other_stats?.num_unique !== undefined) {
    parts.push(`unique ${stats.other_stats.num_unique}`);
  }
  const counts = profile.small_histogram?.bin_counts;
  if (counts && counts.length > 0) {
    // After the null count: the statistics may not fit the line, the shape should.
    const top = Math.max(...counts, 1);
    const bars = counts.map(c => BARS[Math.round((c / top) * (BARS.length - 1))]).join('');
    parts.splice(1, 0, bars);
  }
  return parts.join(' · ');
}

/**
 * The table behind a `positron.dataExplorer` comm as a grid model: pages of rows fetched
 * when the grid first asks for one of their cells, column types in the headers, one sort
 * key set by a header click.
 */
export class ExplorerModel extends DataModel {
  constructor(comm: PaneComm) {
    super();
    this._comm = comm;
    comm.events.connect((_, event) => this._onEvent(event), this);
  }

  get title(): string {
    return this._title;
  }

  get sortText(): string {
    const key = this._sort;
    if (!key) {
      return 'unsorted';
    }
    const name = this._schema[key.column_index]?.column_name ?? key.column_index;
    return `sorted by ${name} ${key.ascending ? 'ascending' : 'descending'}`;
  }

  get numRows(): number {
    return this._rows;
  }

  /** Rows before the row filter. */
  get totalRows(): number {
    return this._total;
  }

  /**
   * Keep the rows whose ``column`` compares with ``value`` (a string: the kernel coerces
   * it to the column's type), or all rows again when ``column`` is null. Returns the
   * kernel's message when the filter cannot apply (the table then stays unfiltered).
   */
  async filter(column: number | null, op: string, value: string): Promise<string | null> {
    const schema = column === null ? undefined : this._schema[column];
    const filters = !schema
      ? []
      : [
          {
            filter_id: `mpk-filter-${column}`,
            column_schema: schema,
            condition: 'and',
            ...(op === 'contains'
              ? {
                  filter_type: 'search',
                  params: { search_type: 'contains', term: value, case_sensitive: false }
                }
              : { filter_type: 'compare', params: { op, value } })
          }
        ];
    await this._comm.request('set_row_filters', { filters });
    const state = await this._comm.request<IBackendState>('get_state');
    this._rows = state.table_shape.num_rows;
    this._total = state.table_unfiltered_shape.num_rows;
    this._reset();
    const invalid = (state.row_filters ?? []).find(f => f.is_valid === false);
    return invalid ? (invalid.error_message ?? 'the filter cannot apply') : null;
  }

  /** The first and last row of the pages loaded last, for the status line. */
  get lastLoaded(): [number, number] | null {
    return this._lastLoaded;
  }

  /** `get_state` and the whole schema; a model-reset tells the grid. */
  async load(): Promise<void> {
    const state = await this._comm.request<IBackendState>('get_state');
    const indices = Array.from({ length: state.table_shape.num_columns }, (_, i) => i);
    const schema = await this._comm.request<{ columns: IColumnSchema[] }>('get_schema', {
      column_indices: indices
    });
    this._title = state.display_name;
    this._rows = state.table_shape.num_rows;
    this._total = state.table_unfiltered_shape.num_rows;
    this._schema = schema.columns;
    this._reset();
  }

  /** Column names in order, once loaded. */
  get columnNames(): string[] {
    return this._schema.map(c => c.column_name);
  }

  /**
   * Null count, summary statistics and a 20-bin histogram of ``column`` (as filtered and
   * sorted now): `get_column_profiles` answers at once, the profile comes later as a
   * `return_column_profiles` event with the same callback id.
   */
  async profile(column: number): Promise<IColumnProfile> {
    const callbackId = `mpk-${++this._callbacks}`;
    const answer = new Promise<IColumnProfile>((resolve, reject) => {
      this._profiles.set(callbackId, { resolve, reject });
    });
    try {
      await this._comm.request('get_column_profiles', {
        callback_id: callbackId,
        profiles: [
          {
            column_index: column,
            profiles: [
              { profile_type: 'null_count' },
              { profile_type: 'summary_stats' },
              { profile_type: 'small_histogram', params: { method: 'fixed', num_bins: 20 } }
            ]
          }
        ],
        format_options: FORMAT_OPTIONS
      });
    } catch (err) {
      this._profiles.delete(callbackId);
      throw err;
    }
    return answer;
  }

  /** A header click: ascending, then descending, then the table's own order. */
  async sortBy(column: number): Promise<void> {
    const key = this._sort;
    const next =
      key?.column_index !== column
        ? { column_index: column, ascending: true }
        : key.ascending
          ? { column_index: column, ascending: false }
          : null;
    await this._comm.request('set_sort_columns', { sort_keys: next ? [next] : [] });
    this._sort = next;
    this._reset();
  }

  rowCount(region: DataModel.RowRegion): number {
    return region === 'body' ? this._rows : 1;
  }

  columnCount(region: DataModel.ColumnRegion): number {
    return region === 'body' ? this._schema.length : 1;
  }

  data(region: DataModel.CellRegion, row: number, column: number): string {
    if (region === 'column-header') {
      const col = this._schema[column];
      const mark =
        this._sort?.column_index === column ? (this._sort.ascending ? ' ▲' : ' ▼') : '';
      return col ? `${col.column_name} (${col.type_display})${mark}` : '';
    }
    if (region === 'row-header') {
      return String(row);
    }
    if (region === 'corner-header') {
      return '';
    }
    const page = Math.floor(row / PAGE_ROWS);
    const values = this._pages.get(page);
    if (!values) {
      this._fetch(page);
      return '…';
    }
    const value = values[column]?.[row - page * PAGE_ROWS];
    return typeof value === 'number' ? (SPECIAL_VALUES[value] ?? String(value)) : (value ?? '');
  }

  /** The cell text once loaded (null before), for the page's status and for tests. */
  loadedValue(row: number, column: number): string | null {
    const page = this._pages.get(Math.floor(row / PAGE_ROWS));
    return page ? this.data('body', row, column) : null;
  }

  dispose(): void {
    this._comm.dispose();
  }

  private _fetch(page: number): void {
    if (this._pending.has(page)) {
      return;
    }
    this._pending.add(page);
    const generation = this._generation;
    const first = page * PAGE_ROWS;
    const last = Math.min(this._rows, first + PAGE_ROWS) - 1;
    const columns = this._schema.map((_, i) => ({
      column_index: i,
      spec: { first_index: first, last_index: last }
    }));
    this._comm
      .request<{ columns: ColumnValue[][] }>('get_data_values', {
        columns,
        format_options: FORMAT_OPTIONS
      })
      .then(
        result => {
          if (generation !== this._generation) {
            return;
          }
          this._pending.delete(page);
          this._pages.set(page, result.columns);
          this._evict(page);
          this._lastLoaded = [first, last];
          this.emitChanged({
            type: 'cells-changed',
            region: 'body',
            row: first,
            column: 0,
            rowSpan: last - first + 1,
            columnSpan: this._schema.length
          });
          this._loaded.forEach(f => f());
        },
        (err: unknown) => {
          this._pending.delete(page);
          console.warn('mpkernel-panes: get_data_values failed', err);
        }
      );
  }

  /** Called after each page arrives (the widget's status line). */
  onLoaded(callback: () => void): void {
    this._loaded.push(callback);
  }

  private _evict(near: number): void {
    while (this._pages.size > MAX_PAGES) {
      let far = near;
      for (const p of this._pages.keys()) {
        if (Math.abs(p - near) > Math.abs(far - near)) {
          far = p;
        }
      }
      this._pages.delete(far);
    }
  }

  private _reset(): void {
    this._generation += 1;
    this._pages.clear();
    this._pending.clear();
    this.emitChanged({ type: 'model-reset' });
    this._loaded.forEach(f => f());
  }

  private _onEvent(event: VariablesEvent): void {
    if (event.kind === 'event' && event.method === 'return_column_profiles') {
      const params = event.params as IProfilesReturned;
      const waiter = this._profiles.get(params.callback_id);
      this._profiles.delete(params.callback_id);
      if (!waiter) {
        return;
      }
      const profile = params.profiles?.[0];
      if (profile && !params.error_message) {
        waiter.resolve(profile);
      } else {
        waiter.reject(new Error(params.error_message ?? 'no profile'));
      }
    } else if (event.kind === 'event' && event.method === 'data_update') {
      this._reset();
    } else if (event.kind === 'event' && event.method === 'schema_update') {
      void this.load();
    }
  }

  private _comm: PaneComm;
  private _title = '';
  private _rows = 0;
  private _total = 0;
  private _schema: IColumnSchema[] = [];
  private _sort: { column_index: number; ascending: boolean } | null = null;
  private _pages = new Map<number, ColumnValue[][]>();
  private _pending = new Set<number>();
  private _generation = 0;
  private _lastLoaded: [number, number] | null = null;
  private _loaded: (() => void)[] = [];
  private _callbacks = 0;
  private _profiles = new Map<
    string,
    { resolve: (p: IColumnProfile) => void; reject: (e: Error) => void }
  >();
}
