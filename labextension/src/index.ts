import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ISessionContext } from '@jupyterlab/apputils';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { ConsolePanel, IConsoleTracker } from '@jupyterlab/console';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { listIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { EXPLORER_TARGET } from './explorer';
import { openExplorer } from './tab';
import { VariablesPanel } from './panel';

/** The sidebar's id, also its tab's DOM id. */
const PANEL_ID = 'mpkernel-variables';

/**
 * The notebook or console whose kernel the sidebar follows: the current one, else the
 * last one that was current and is still open.
 */
function contextOf(widget: Widget | null): ISessionContext | null {
  if (widget instanceof NotebookPanel || widget instanceof ConsolePanel) {
    return widget.sessionContext;
  }
  return null;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'mpkernel-panes:variables',
  description: 'A Variables sidebar served by the mpkernel kernel\'s worker processes.',
  autoStart: true,
  requires: [ILabShell, INotebookTracker, IConsoleTracker],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    notebooks: INotebookTracker,
    consoles: IConsoleTracker
  ) => {
    const panel = new VariablesPanel();
    panel.id = PANEL_ID;
    panel.title.icon = listIcon;
    panel.title.caption = 'Variables';
    panel.title.label = 'Variables';
    app.shell.add(panel, 'left', { rank: 700 });

    // A data explorer comm the kernel opens (the sidebar's View, `mpkernel.view(df)`,
    // `%view df`) becomes a main-area tab; without a target JupyterLab would close it.
    const onExplorer = (comm: Kernel.IComm, msg: KernelMessage.ICommOpenMsg): void => {
      const data = msg.content.data as { title?: unknown };
      const widget = openExplorer(comm, typeof data.title === 'string' ? data.title : '');
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
    };
    const watch = (context: ISessionContext): void => {
      const register = (): void => {
        context.session?.kernel?.registerCommTarget(EXPLORER_TARGET, onExplorer);
      };
      context.kernelChanged.connect(register);
      register();
    };
    notebooks.widgetAdded.connect((_, widget) => watch(widget.sessionContext));
    consoles.widgetAdded.connect((_, widget) => watch(widget.sessionContext));

    let bound: Widget | null = null;
    const forget = (widget: Widget): void => {
      if (widget !== bound) {
        return;
      }
      bound = null;
      const next = notebooks.currentWidget ?? consoles.currentWidget;
      if (next && !next.isDisposed) {
        follow(next);
      } else {
        panel.bind(null);
      }
    };
    const follow = (widget: Widget | null): void => {
      const context = contextOf(widget);
      if (widget && context && widget !== bound) {
        bound = widget;
        widget.disposed.connect(forget);
        panel.bind(context);
      }
    };
    shell.currentChanged.connect((_, change) => follow(change.newValue));
    follow(shell.currentWidget);
    if (!bound) {
      panel.bind(null);
    }
  }
};

export default plugin;
