/**
 * The `positron.variables` comm contract as this extension uses it: JSON-RPC 2.0 objects
 * carried in comm data; a reply is matched to its request by the Jupyter parent header.
 */

export const VARIABLES_TARGET = 'positron.variables';
/** mpkernel's own status comm: its workers, their crashes and restarts. */
export const HEALTH_TARGET = 'mpkernel.health';
/** The mpkernel worker that serves the variables comm. */
export const VARIABLES_WORKER = 'variables';

/** One row of the pane, as the kernel describes it. */
export interface IVariable {
  access_key: string;
  display_name: string;
  display_value: string;
  display_type: string;
  type_info: string;
  size: number;
  kind: string;
  length: number;
  has_children: boolean;
  has_viewer: boolean;
  is_truncated: boolean;
}

/** `refresh` event params, and the `list` result. */
export interface IVariableList {
  variables: IVariable[];
  length: number;
  version?: number;
}

/** `update` event params (`unevaluated` is absent from older kernels). */
export interface IUpdate {
  assigned: IVariable[];
  unevaluated?: IVariable[];
  removed: string[];
  version: number;
}

/** `inspect` result. */
export interface IInspected {
  children: IVariable[];
  length: number;
}

export interface IRpcError {
  code: number;
  message: string;
}

/** A comm message's data: a request's reply (result or error) or an event (method). */
export interface IRpcMessage {
  jsonrpc?: string;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: IRpcError;
}

/** Why the kernel closed the comm (mpkernel's comm_close data). */
export interface ICloseReason {
  reason?: string;
  worker?: string;
  exit?: string;
}

/** One worker in the `mpkernel.health` `status` result (the fields used here). */
export interface IWorkerHealth {
  name: string;
  crashes: number;
  restarts: number;
  last_exit_reason?: string | null;
}

export interface IHealthStatus {
  workers: IWorkerHealth[];
}

/** Top-level rows in a stable order: by name, then by access key. */
export function sortVariables(variables: IVariable[]): IVariable[] {
  return [...variables].sort(
    (a, b) =>
      a.display_name.localeCompare(b.display_name, undefined, { numeric: true }) ||
      (a.access_key < b.access_key ? -1 : a.access_key > b.access_key ? 1 : 0)
  );
}

/** A byte count for people: 12 B, 3.4 KiB, 1.2 GiB. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
