import { ISessionContext } from '@jupyterlab/apputils';
import { Kernel } from '@jupyterlab/services';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { PaneComm, VariablesEvent, workerHealth } from './client';
import { ICloseReason, IVariable, VARIABLES_WORKER, formatSize, sortVariables } from './protocol';

/** What an expanded row holds: its children once `inspect` answered, or why not. */
interface IExpansion {
  children?: IVariable[];
  length?: number;
  error?: string;
  /** When the expand was asked for, to show how long the answer took. */
  asked: number;
}

const RESTART_STATES = new Set<Kernel.Status>(['restarting', 'autorestarting', 'dead']);

/**
 * The "Variables" sidebar: the variables of the current notebook's or console's kernel,
 * from a `positron.variables` comm that is opened only once the panel is shown.
 */
export class VariablesPanel extends Widget {
  constructor() {
    super();
    this.addClass('mpk-Variables');
    const header = document.createElement('div');
    header.className = 'mpk-Variables-header';
    header.textContent = 'Variables';
    this._status = document.createElement('div');
    this._status.className = 'mpk-Variables-status';
    this._notice = document.createElement('div');
    this._notice.className = 'mpk-Variables-notice';
    this._notice.hidden = true;
    const table = document.createElement('table');
    table.className = 'mpk-Variables-table';
    const head = table.createTHead().insertRow();
    for (const title of ['Name', 'Type', 'Value', 'Size']) {
      const th = document.createElement('th');
      th.textContent = title;
      head.appendChild(th);
    }
    this._body = table.createTBody();
    this._body.addEventListener('click', event => this._onClick(event));
    this.node.append(header, this._status, this._notice, table);
  }

  /** Follow ``context``'s kernel (null: no notebook or console is current). */
  bind(context: ISessionContext | null): void {
    if (context === this._context) {
      return;
    }
    if (this._context) {
      this._context.kernelChanged.disconnect(this._onKernelChanged, this);
      this._context.statusChanged.disconnect(this._onStatus, this);
    }
    this._context = context;
    if (context) {
      context.kernelChanged.connect(this._onKernelChanged, this);
      context.statusChanged.connect(this._onStatus, this);
    }
    this._reset();
    this._sync();
  }

  dispose(): void {
    this._client?.dispose();
    this._client = null;
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._sync();
  }

  private _onKernelChanged(): void {
    this._reset();
    this._sync();
  }

  private _onStatus(_: ISessionContext, status: Kernel.Status): void {
    if (RESTART_STATES.has(status)) {
      // The kernel's comms end with it; it sends no comm_close for them.
      this._reset();
      this._setStatus(`The kernel is ${status === 'dead' ? 'dead' : 'restarting'}.`);
    } else if (status === 'idle' && !this._client) {
      this._sync();
    }
  }

  /** Drop the comm and everything it showed, without touching the kernel. */
  private _reset(): void {
    this._client?.dispose();
    this._client = null;
    this._checked = null;
    this._recovering = null;
    this._notice.hidden = true;
    this._variables = new Map();
    this._expanded = new Map();
    this._render();
  }

  /** Open a comm if the panel is shown, bound to an mpkernel kernel, and has none. */
  private _sync(): void {
    if (!this.isVisible || this._client) {
      return;
    }
    const kernel = this._context?.session?.kernel;
    if (!this._context) {
      this._setStatus('Open a notebook or a console to see its variables.');
      return;
    }
    if (!kernel) {
      this._setStatus('No kernel.');
      return;
    }
    if (this._checked === kernel) {
      return;
    }
    this._checked = kernel;
    this._setStatus('Connecting…');
    void kernel.info.then(
      info => {
        if (this._checked !== kernel || this._client) {
          return;
        }
        if (info.implementation !== 'mpkernel') {
          this._setStatus(
            'The Variables panel needs the mpkernel kernel; this kernel is ' +
              `${info.implementation} (${this._context?.kernelDisplayName ?? kernel.name}).`
          );
          return;
        }
        this._open(kernel);
      },
      (err: unknown) => this._setStatus(`The kernel did not describe itself: ${String(err)}`)
    );
  }

  private _open(kernel: Kernel.IKernelConnection): void {
    const client = new PaneComm(kernel);
    this._client = client;
    this._received = false;
    client.events.connect((_, event) => this._onEvent(client, event), this);
    client.open();
    this._setStatus('Waiting for the variables…');
  }

  private _onEvent(client: PaneComm, event: VariablesEvent): void {
    if (client !== this._client) {
      return;
    }
    switch (event.kind) {
      case 'refresh':
        this._checkRestart(client, this._received);
        this._received = true;
        this._variables = new Map(event.list.variables.map(v => [v.access_key, v]));
        this._afterRecovery();
        this._reinspect(null);
        break;
      case 'update': {
        const u = event.update;
        for (const key of u.removed) {
          this._variables.delete(key);
          this._forget(key);
        }
        const changed = [...u.assigned, ...(u.unevaluated ?? [])];
        for (const v of changed) {
          this._variables.set(v.access_key, v);
        }
        this._reinspect(new Set(u.assigned.map(v => v.access_key)));
        break;
      }
      case 'closed':
        this._onClosed(event.reason);
        return;
    }
    this._render();
  }

  /** The kernel closed the comm: say why, and open a new one if it was working. */
  private _onClosed(reason: ICloseReason): void {
    const worked = this._received;
    this._client = null;
    const why =
      reason.reason === 'worker_crashed'
        ? `The variables worker crashed (${reason.exit ?? 'no exit status'})`
        : `The kernel closed the variables comm (${reason.reason ?? 'no reason given'})`;
    if (worked && this._context?.session?.kernel) {
      this._showNotice(`${why}; reopening…`, 'mpk-mod-warning');
      this._recovering = why;
      this._checked = null;
      this._sync();
    } else {
      const failed = this._recovering ? `${this._recovering}; reopening failed: ${why}` : why;
      this._recovering = null;
      this._showNotice(`${failed}. Restart the kernel to try again.`, 'mpk-mod-error');
      this._setStatus('Not connected.');
    }
    this._render();
  }

  /**
   * A `refresh` after the first one on a comm: the kernel reopened it on a new worker (a
   * crash of its worker, which the kernel restarts) or the list changed too much for an
   * `update`. The kernel's worker status tells which; a crash is shown.
   */
  private _checkRestart(client: PaneComm, again: boolean): void {
    const kernel = this._context?.session?.kernel;
    if (!kernel) {
      return;
    }
    workerHealth(kernel, VARIABLES_WORKER).then(
      worker => {
        if (!worker || client !== this._client) {
          return;
        }
        if (again && worker.crashes > this._crashes) {
          const exit = worker.last_exit_reason ?? 'no exit status';
          this._showNotice(
            `The variables worker crashed (${exit}); ` +
              'the kernel restarted it and the list was reloaded.',
            'mpk-mod-warning'
          );
        }
        this._crashes = worker.crashes;
      },
      (err: unknown) => console.warn('mpkernel-panes: no worker status', err)
    );
  }

  private _afterRecovery(): void {
    if (this._recovering) {
      this._showNotice(`${this._recovering}; reopened on a new worker.`, 'mpk-mod-warning');
      this._recovering = null;
    }
  }

  private _showNotice(text: string, mod: string): void {
    this._notice.textContent = text;
    this._notice.className = `mpk-Variables-notice ${mod}`;
    this._notice.hidden = false;
  }

  /** Expanded rows under ``keys`` (all, if null) are asked for their children again. */
  private _reinspect(keys: Set<string> | null): void {
    for (const [id, expansion] of this._expanded) {
      const path = JSON.parse(id) as string[];
      if (!this._variables.has(path[0])) {
        this._expanded.delete(id);
      } else if (keys === null || keys.has(path[0])) {
        this._inspect(path, expansion.asked);
      }
    }
  }

  private _forget(key: string): void {
    for (const id of this._expanded.keys()) {
      if ((JSON.parse(id) as string[])[0] === key) {
        this._expanded.delete(id);
      }
    }
  }

  private _onClick(event: MouseEvent): void {
    const target = event.target as HTMLElement;
    const row = target.closest('tr');
    const path = row?.dataset.path;
    if (path && target.classList.contains('mpk-Variables-view')) {
      // The kernel answers by opening a data explorer comm: the plugin opens its tab.
      const view = this._client?.request('view', { path: JSON.parse(path) as string[] });
      view?.catch((err: unknown) => {
        const why = err instanceof Error ? err.message : String(err);
        this._showNotice(`Could not view: ${why}`, 'mpk-mod-error');
      });
      return;
    }
    if (!row || !path || row.dataset.expandable !== 'true') {
      return;
    }
    if (this._expanded.has(path)) {
      for (const id of [...this._expanded.keys()]) {
        if (id === path || id.startsWith(path.slice(0, -1) + ',')) {
          this._expanded.delete(id);
        }
      }
      this._render();
    } else {
      this._inspect(JSON.parse(path) as string[], performance.now());
    }
  }

  private _inspect(path: string[], asked: number): void {
    const id = JSON.stringify(path);
    const client = this._client;
    if (!client) {
      return;
    }
    const previous = this._expanded.get(id);
    this._expanded.set(id, { ...previous, asked });
    this._render();
    client.inspect(path).then(
      result =>
        this._answered(client, id, asked, {
          children: result.children,
          length: result.length,
          asked
        }),
      (err: unknown) =>
        this._answered(client, id, asked, {
          error: err instanceof Error ? err.message : String(err),
          asked
        })
    );
  }

  private _answered(client: PaneComm, id: string, asked: number, expansion: IExpansion): void {
    // A newer request for the same row, a collapse or another comm wins.
    if (client !== this._client || this._expanded.get(id)?.asked !== asked) {
      return;
    }
    this._expanded.set(id, expansion);
    this._render();
    const row = this._body.querySelector<HTMLElement>(`tr[data-path="${CSS.escape(id)}"]`);
    if (row) {
      row.dataset.answerMs = (performance.now() - asked).toFixed(1);
    }
  }

  private _setStatus(text: string): void {
    this._status.textContent = text;
  }

  private _render(): void {
    const rows: HTMLTableRowElement[] = [];
    this._rows(sortVariables([...this._variables.values()]), [], '', rows);
    this._body.replaceChildren(...rows);
    if (this._client && this._received) {
      const n = this._variables.size;
      this._setStatus(n === 0 ? 'No variables yet.' : `${n} variable${n === 1 ? '' : 's'}`);
    }
  }

  /** Rows for ``variables`` under ``parent`` (whose top-level row is named ``root``). */
  private _rows(
    variables: IVariable[],
    parent: string[],
    root: string,
    out: HTMLTableRowElement[]
  ): void {
    const depth = parent.length;
    for (const v of variables) {
      const path = [...parent, v.access_key];
      const id = JSON.stringify(path);
      const expansion = this._expanded.get(id);
      const row = document.createElement('tr');
      row.className = 'mpk-Variables-row';
      row.dataset.path = id;
      row.dataset.name = v.display_name;
      row.dataset.depth = String(depth);
      row.dataset.root = root || v.display_name;
      row.dataset.kind = v.kind;
      row.dataset.expandable = String(v.has_children);
      const name = row.insertCell();
      name.className = 'mpk-Variables-name';
      name.style.paddingLeft = `${4 + depth * 14}px`;
      const toggle = document.createElement('span');
      toggle.className = 'mpk-Variables-toggle';
      toggle.textContent = v.has_children ? (expansion ? '▾' : '▸') : '';
      name.append(toggle, v.display_name);
      if (v.has_viewer) {
        const view = document.createElement('button');
        view.className = 'mpk-Variables-view';
        view.textContent = 'View';
        view.title = `Open ${v.display_name} in a data explorer tab`;
        name.appendChild(view);
      }
      this._cell(row, 'mpk-Variables-type', v.display_type, v.type_info);
      const value = v.display_value + (v.is_truncated ? '…' : '');
      this._cell(row, 'mpk-Variables-value', value, v.display_value);
      this._cell(row, 'mpk-Variables-size', formatSize(v.size), `${v.size} bytes`);
      out.push(row);
      if (!expansion) {
        continue;
      }
      if (expansion.error !== undefined) {
        out.push(this._message(`Could not expand: ${expansion.error}`, depth + 1, 'mpk-mod-error'));
      } else if (expansion.children === undefined) {
        out.push(this._message('Loading…', depth + 1, 'mpk-Variables-loading'));
      } else {
        this._rows(expansion.children, path, root || v.display_name, out);
        const more = (expansion.length ?? 0) - expansion.children.length;
        if (more > 0) {
          out.push(this._message(`… ${more} more`, depth + 1, ''));
        }
      }
    }
  }

  private _cell(row: HTMLTableRowElement, cls: string, text: string, title: string): void {
    const cell = row.insertCell();
    cell.className = cls;
    cell.textContent = text;
    cell.title = title;
  }

  private _message(text: string, depth: number, cls: string): HTMLTableRowElement {
    const row = document.createElement('tr');
    row.className = `mpk-Variables-message ${cls}`;
    const cell = row.insertCell();
    cell.colSpan = 4;
    cell.style.paddingLeft = `${4 + depth * 14}px`;
    cell.textContent = text;
    return row;
  }

  private _context: ISessionContext | null = null;
  private _client: PaneComm | null = null;
  /** The kernel whose implementation was (being) checked, so it is asked once. */
  private _checked: Kernel.IKernelConnection | null = null;
  private _received = false;
  /** The variables worker's crash count when this comm's list was last (re)loaded. */
  private _crashes = 0;
  private _recovering: string | null = null;
  private _variables = new Map<string, IVariable>();
  private _expanded = new Map<string, IExpansion>();
  private _status: HTMLDivElement;
  private _notice: HTMLDivElement;
  private _body: HTMLTableSectionElement;
}
