import { Kernel, KernelMessage } from '@jupyterlab/services';
import { JSONObject } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import {
  HEALTH_TARGET,
  ICloseReason,
  IHealthStatus,
  IInspected,
  IRpcMessage,
  IUpdate,
  IVariableList,
  IWorkerHealth,
  VARIABLES_TARGET
} from './protocol';

/** What the pane hears from its comm besides replies. */
export type VariablesEvent =
  | { kind: 'refresh'; list: IVariableList }
  | { kind: 'update'; update: IUpdate }
  | { kind: 'event'; method: string; params: unknown }
  | { kind: 'closed'; reason: ICloseReason };

/**
 * One JSON-RPC comm on a kernel, by default `positron.variables`: requests answered by the
 * worker that serves it (through the kernel's shell socket, so they are answered while a
 * cell runs), and the `refresh` / `update` events it pushes.
 */
export class PaneComm {
  /** A new comm on ``kernel`` (opened by ``open``), or one the kernel opened. */
  constructor(kernel: Kernel.IKernelConnection | Kernel.IComm, target = VARIABLES_TARGET) {
    this._comm = 'createComm' in kernel ? kernel.createComm(target) : kernel;
    this._comm.onMsg = msg => this._onMsg(msg);
    this._comm.onClose = msg => this._onClose(msg);
  }

  get events(): ISignal<this, VariablesEvent> {
    return this._events;
  }

  get isOpen(): boolean {
    return !this._closed;
  }

  /** Open the comm; the kernel answers with a `refresh` event. */
  open(): void {
    this._comm.open({});
  }

  /** Close the comm from this side (the kernel ends its handler). */
  dispose(): void {
    if (this._closed) {
      return;
    }
    this._closed = true;
    if (!this._comm.isDisposed) {
      try {
        this._comm.close();
      } catch (err) {
        // A dead kernel takes its comms with it: nothing left to close.
        console.warn(`mpkernel-panes: closing ${this._comm.targetName}:`, err);
      }
    }
    Signal.clearData(this);
  }

  list(): Promise<IVariableList> {
    return this.request<IVariableList>('list');
  }

  inspect(path: string[]): Promise<IInspected> {
    return this.request<IInspected>('inspect', { path });
  }

  /** One JSON-RPC request; its reply is the comm_msg parented to it. */
  request<T>(method: string, params?: Record<string, unknown>): Promise<T> {
    if (this._closed) {
      return Promise.reject(new Error('the variables comm is closed'));
    }
    // No `params` at all for a method without any, as Positron sends it.
    const data: IRpcMessage = params
      ? { jsonrpc: '2.0', method, params }
      : { jsonrpc: '2.0', method };
    return new Promise<T>((resolve, reject) => {
      let answered = false;
      const future = this._comm.send(data as unknown as JSONObject);
      future.onIOPub = msg => {
        if (answered || msg.header.msg_type !== 'comm_msg') {
          return;
        }
        const reply = (msg as KernelMessage.ICommMsgMsg).content.data as IRpcMessage;
        if (reply.error) {
          answered = true;
          reject(new Error(reply.error.message));
        } else if ('result' in reply) {
          answered = true;
          resolve(reply.result as T);
        }
      };
      future.done.then(
        () => {
          if (!answered) {
            answered = true;
            reject(new Error(`the kernel sent no answer to ${method}`));
          }
        },
        (err: unknown) => {
          if (!answered) {
            answered = true;
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        }
      );
    });
  }

  private _onMsg(msg: KernelMessage.ICommMsgMsg): void {
    const data = msg.content.data as IRpcMessage;
    // Replies reach their request's future; only events are handled here.
    if (data.method === 'refresh') {
      this._events.emit({ kind: 'refresh', list: data.params as IVariableList });
    } else if (data.method === 'update') {
      this._events.emit({ kind: 'update', update: data.params as IUpdate });
    } else if (data.method) {
      this._events.emit({ kind: 'event', method: data.method, params: data.params });
    }
  }

  private _onClose(msg: KernelMessage.ICommCloseMsg): void {
    if (this._closed) {
      return;
    }
    this._closed = true;
    this._events.emit({ kind: 'closed', reason: (msg.content.data ?? {}) as ICloseReason });
  }

  private _comm: Kernel.IComm;
  private _closed = false;
  private _events = new Signal<this, VariablesEvent>(this);
}

/**
 * The kernel's status of its worker ``name`` (crash and restart counts, last exit), from a
 * short-lived `mpkernel.health` comm; null if the kernel has no such worker.
 */
export async function workerHealth(
  kernel: Kernel.IKernelConnection,
  name: string
): Promise<IWorkerHealth | null> {
  const health = new PaneComm(kernel, HEALTH_TARGET);
  health.open();
  try {
    const status = await health.request<IHealthStatus>('status');
    return status.workers.find(w => w.name === name) ?? null;
  } finally {
    health.dispose();
  }
}
