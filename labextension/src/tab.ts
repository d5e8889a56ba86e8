import { MainAreaWidget } from '@jupyterlab/apputils';
import { Kernel } from '@jupyterlab/services';
import { DataGrid } from '@lumino/datagrid';
import { BoxPanel, Widget } from '@lumino/widgets';

import { PaneComm } from './client';
import { ExplorerModel, FILTER_OPS, describeProfile } from './explorer';

/** The grid's geometry (the e2e tests click headers by it). */
const GRID_SIZES = { rowHeight: 22, columnWidth: 140, rowHeaderWidth: 90, columnHeaderHeight: 24 };
/** Height of each line above the grid. */
const LINE_HEIGHT = 28;

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

function options(names: string[]): HTMLOptionElement[] {
  return names.map((name, i) => new Option(name, String(i)));
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A line of controls above the grid. */
function line(content: BoxPanel, className: string, ...children: (Node | string)[]): Widget {
  const widget = new Widget();
  widget.addClass(className);
  widget.node.append(...children);
  content.addWidget(widget);
  BoxPanel.setStretch(widget, 0);
  BoxPanel.setSizeBasis(widget, LINE_HEIGHT);
  return widget;
}

/** "Summary of [column]": the column's profile, once the kernel sends it. */
function summaryLine(content: BoxPanel, model: ExplorerModel): (names: string[]) => void {
  const picker = element('select', 'mpk-Explorer-summaryColumn');
  const summary = element('span', 'mpk-Explorer-summary');
  line(content, 'mpk-Explorer-summaryLine', 'Summary of ', picker, ' ', summary);
  picker.addEventListener('change', () => {
    const column = Number(picker.value);
    if (picker.value === '' || Number.isNaN(column)) {
      summary.textContent = '';
      return;
    }
    summary.textContent = 'computing…';
    model.profile(column).then(
      profile => {
        // A later pick wins.
        if (picker.value === String(column)) {
          summary.textContent = describeProfile(profile);
        }
      },
      (err: unknown) => {
        summary.textContent = `no summary: ${reason(err)}`;
      }
    );
  });
  return names => picker.replaceChildren(new Option('(pick a column)', ''), ...options(names));
}

/** "Rows where [column] [op] [value] Filter Clear", and the kernel's word on a bad one. */
function filterLine(content: BoxPanel, model: ExplorerModel): (names: string[]) => void {
  const column = element('select', 'mpk-Explorer-filterColumn');
  const op = element('select', 'mpk-Explorer-filterOp');
  op.append(...FILTER_OPS.map(o => new Option(o, o)));
  const value = element('input', 'mpk-Explorer-filterValue');
  value.placeholder = 'value';
  const apply = element('button', 'mpk-Explorer-filterApply', 'Filter');
  const clear = element('button', 'mpk-Explorer-filterClear', 'Clear');
  const message = element('span', 'mpk-Explorer-filterMessage');
  line(content, 'mpk-Explorer-filterLine', 'Rows where ', column, op, value, apply, clear, message);
  const run = (index: number | null): void => {
    message.textContent = '';
    model.filter(index, op.value, value.value).then(
      error => {
        message.textContent = error ? ` ${error}` : '';
      },
      (err: unknown) => {
        message.textContent = ` ${reason(err)}`;
      }
    );
  };
  apply.addEventListener('click', () => run(Number(column.value)));
  value.addEventListener('keydown', event => {
    if (event.key === 'Enter') {
      run(Number(column.value));
    }
  });
  clear.addEventListener('click', () => run(null));
  return names => column.replaceChildren(...options(names));
}

/** The status line: row count, sort, rows loaded last (also as data attributes). */
function statusLine(content: BoxPanel, model: ExplorerModel): () => void {
  const status = line(content, 'mpk-Explorer-status').node;
  const count = (n: number): string => n.toLocaleString('en-US');
  return () => {
    const loaded = model.lastLoaded;
    const rows =
      model.numRows === model.totalRows
        ? `${count(model.numRows)} rows`
        : `${count(model.numRows)} of ${count(model.totalRows)} rows`;
    const loadedText = loaded ? ` · loaded rows ${loaded[0]}–${loaded[1]}` : '';
    status.textContent = `${rows} · ${model.sortText}${loadedText}`;
    status.dataset.sort = model.sortText;
    status.dataset.firstValue = model.loadedValue(0, 0) ?? '';
    status.dataset.loadedFirst = loaded ? String(loaded[0]) : '';
  };
}

/**
 * A main-area tab over a data explorer comm the kernel opened: a status line, a column
 * summary, a row filter, and a virtual grid whose header clicks sort.
 */
export function openExplorer(comm: Kernel.IComm, title: string): MainAreaWidget<BoxPanel> {
  const model = new ExplorerModel(new PaneComm(comm));
  const content = new BoxPanel({ direction: 'top-to-bottom', spacing: 0 });
  content.addClass('mpk-Explorer');
  const showStatus = statusLine(content, model);
  const fillSummary = summaryLine(content, model);
  const fillFilter = filterLine(content, model);
  const grid = new DataGrid({ defaultSizes: GRID_SIZES });
  grid.dataModel = model;
  grid.addClass('mpk-Explorer-grid');
  content.addWidget(grid);
  BoxPanel.setStretch(grid, 1);
  grid.node.addEventListener('click', event => {
    const hit = grid.hitTest(event.clientX, event.clientY);
    if (hit.region === 'column-header') {
      void model.sortBy(hit.column);
    }
  });
  model.onLoaded(showStatus);

  const widget = new MainAreaWidget({ content });
  widget.id = `mpkernel-explorer-${comm.commId}`;
  widget.title.label = title || 'Data';
  widget.title.closable = true;
  widget.disposed.connect(() => model.dispose());
  void model.load().then(() => {
    widget.title.label = model.title || widget.title.label;
    fillSummary(model.columnNames);
    fillFilter(model.columnNames);
    showStatus();
  });
  return widget;
}
