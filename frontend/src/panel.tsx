import * as React from 'react';
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';

import { KitsView } from './components/KitsView';
import { PolicyView } from './components/PolicyView';
import { PublishDialog } from './components/PublishDialog';
import { RunsView } from './components/RunsView';
import { VerifyBox } from './components/VerifyBox';
import { modelKitsIcon } from './icon';
import { PanelModel, Tab } from './model';

const TABS: Array<[Tab, string]> = [
  ['runs', 'Runs'],
  ['kits', 'Kits'],
  ['verify', 'Verify'],
  ['policy', 'Policy']
];

function PanelBody(props: { model: PanelModel }): JSX.Element {
  const { model } = props;
  return (
    <div className="jp-ModelKits" data-testid="mk-panel">
      <div className="jp-ModelKits-header">
        <modelKitsIcon.react tag="span" className="jp-ModelKits-headerIcon" />
        <span className="jp-ModelKits-headerTitle">ModelKits</span>
      </div>
      <div className="jp-ModelKits-tabs" role="tablist">
        {TABS.map(([id, label]) => (
          <button
            key={id}
            role="tab"
            aria-selected={model.tab === id}
            data-testid={`mk-tab-${id}`}
            className={`jp-ModelKits-tab${model.tab === id ? ' jp-mod-active' : ''}`}
            onClick={() => (model.tab = id)}
          >
            {label}
          </button>
        ))}
      </div>
      <div className="jp-ModelKits-body">
        {/* the runs view stays mounted (keeps its page and selection) */}
        <div hidden={model.tab !== 'runs'}>
          <RunsView model={model} />
        </div>
        {model.tab === 'kits' && <KitsView model={model} />}
        {model.tab === 'verify' && <VerifyBox model={model} />}
        {model.tab === 'policy' && <PolicyView model={model} />}
      </div>
      {model.publishFor && (
        <PublishDialog
          key={model.publishFor.runId}
          model={model}
          runId={model.publishFor.runId}
          onClose={() => model.closePublish()}
        />
      )}
    </div>
  );
}

/** The left-sidebar panel. */
export class ModelKitsPanel extends ReactWidget {
  constructor(readonly model: PanelModel) {
    super();
    this.id = 'mlflow-modelkit-panel';
    this.addClass('jp-ModelKits-panel');
    this.title.icon = modelKitsIcon;
    this.title.caption = 'ModelKits';
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <PanelBody model={this.model} />}
      </UseSignal>
    );
  }
}
