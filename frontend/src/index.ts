import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, InputDialog } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { PanelModel } from './model';
import { ModelKitsPanel } from './panel';
import { ModelKitsAPI } from './request';
import { DEFAULT_SETTINGS, IPanelSettings } from './types';

const PLUGIN_ID = 'mlflow-modelkit:plugin';

export namespace CommandIDs {
  export const open = 'mlflow-modelkit:open';
  export const publish = 'mlflow-modelkit:publish';
  export const verify = 'mlflow-modelkit:verify';
}

function strings(v: unknown): string[] {
  return Array.isArray(v)
    ? v.filter(x => typeof x === 'string' && x.trim()).map(String)
    : [];
}

/** The user's settings, with defaults for anything missing or malformed. */
export function readSettings(
  composite: Record<string, unknown>
): IPanelSettings {
  const str = (k: string) =>
    typeof composite[k] === 'string' ? (composite[k] as string) : '';
  const size = Number(composite.pageSize);
  return {
    trackingUri: str('trackingUri'),
    defaultRepository: str('defaultRepository'),
    keyPath: str('keyPath'),
    metricColumns: strings(composite.metricColumns),
    paramColumns: strings(composite.paramColumns),
    pageSize:
      Number.isInteger(size) && size > 0
        ? Math.min(size, 1000)
        : DEFAULT_SETTINGS.pageSize
  };
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'ModelKits panel: MLflow runs as signed, scanned KitOps ModelKits',
  autoStart: true,
  optional: [ISettingRegistry, ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    const model: PanelModel = new PanelModel(
      new ModelKitsAPI(
        app.serviceManager.serverSettings,
        (): IPanelSettings => model.settings
      )
    );
    const panel = new ModelKitsPanel(model);
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, 'mlflow-modelkit-panel');

    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const update = () => {
            model.settings = readSettings(
              settings.composite as Record<string, unknown>
            );
          };
          update();
          settings.changed.connect(update);
        })
        .catch(reason => {
          console.error('mlflow-modelkit: cannot load settings', reason);
        });
    }

    const open = () => app.shell.activateById(panel.id);
    app.commands.addCommand(CommandIDs.open, {
      label: 'ModelKits: Open panel',
      describedBy: { args: { type: 'object', properties: {} } },
      execute: () => {
        open();
      }
    });
    app.commands.addCommand(CommandIDs.publish, {
      label: 'ModelKits: Publish run…',
      describedBy: {
        args: {
          type: 'object',
          properties: {
            runId: {
              type: 'string',
              description: 'the run to publish (default: the selected run)'
            }
          }
        }
      },
      execute: args => {
        open();
        model.tab = 'runs';
        model.openPublish((args.runId as string) ?? null);
      }
    });
    app.commands.addCommand(CommandIDs.verify, {
      label: 'ModelKits: Verify reference…',
      describedBy: {
        args: {
          type: 'object',
          properties: {
            reference: {
              type: 'string',
              description: 'the reference to verify (default: ask)'
            }
          }
        }
      },
      execute: async args => {
        let reference = (args.reference as string) ?? '';
        if (!reference) {
          const answer = await InputDialog.getText({
            title: 'Verify a ModelKit reference',
            placeholder: 'repository:tag or repository@sha256:…'
          });
          if (!answer.button.accept || !answer.value?.trim()) {
            return;
          }
          reference = answer.value.trim();
        }
        open();
        model.requestVerify(reference);
      }
    });
    if (palette) {
      for (const command of [
        CommandIDs.open,
        CommandIDs.publish,
        CommandIDs.verify
      ]) {
        palette.addItem({ command, category: 'ModelKits' });
      }
    }
  }
};

export default plugin;
