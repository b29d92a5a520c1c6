/** Shared state between the commands (index.ts) and the panel's React tree. */
import { ISignal, Signal } from '@lumino/signaling';

import { repositoryFromLocation } from './format';
import { ModelKitsAPI } from './request';
import { DEFAULT_SETTINGS, IExperiment, IPanelSettings } from './types';

export type Tab = 'runs' | 'kits' | 'verify' | 'policy';

export class PanelModel {
  constructor(readonly api: ModelKitsAPI) {}

  get changed(): ISignal<PanelModel, void> {
    return this._changed;
  }

  get settings(): IPanelSettings {
    return this._settings;
  }
  set settings(s: IPanelSettings) {
    this._settings = s;
    this._changed.emit();
  }

  get tab(): Tab {
    return this._tab;
  }
  set tab(t: Tab) {
    if (t !== this._tab) {
      this._tab = t;
      this._changed.emit();
    }
  }

  /** The experiment picked in the runs view (its artifact location seeds the kits view). */
  get experiment(): IExperiment | null {
    return this._experiment;
  }
  set experiment(e: IExperiment | null) {
    this._experiment = e;
    this._changed.emit();
  }

  /** The run selected in the runs table (the "Publish run…" command's default). */
  get selectedRun(): string | null {
    return this._selectedRun;
  }
  set selectedRun(id: string | null) {
    if (id !== this._selectedRun) {
      this._selectedRun = id;
      this._changed.emit();
    }
  }

  /** Non-null while the publish dialog is open; the run id is editable in the dialog. */
  get publishFor(): { runId: string } | null {
    return this._publishFor;
  }

  openPublish(runId?: string | null): void {
    this._publishFor = { runId: runId ?? this._selectedRun ?? '' };
    this._changed.emit();
  }

  closePublish(): void {
    this._publishFor = null;
    this._changed.emit();
  }

  /** A reference to verify, set by the "Verify reference…" command (serial bumps re-runs). */
  get verifyRequest(): { reference: string; serial: number } | null {
    return this._verifyRequest;
  }

  requestVerify(reference: string): void {
    this._verifyRequest = {
      reference,
      serial: (this._verifyRequest?.serial ?? 0) + 1
    };
    this._tab = 'verify';
    this._changed.emit();
  }

  /** The repository the kits view lists by default. */
  defaultRepository(): string {
    return (
      this._settings.defaultRepository ||
      repositoryFromLocation(this._experiment?.artifact_location)
    );
  }

  private _changed = new Signal<PanelModel, void>(this);
  private _settings: IPanelSettings = { ...DEFAULT_SETTINGS };
  private _tab: Tab = 'runs';
  private _experiment: IExperiment | null = null;
  private _selectedRun: string | null = null;
  private _publishFor: { runId: string } | null = null;
  private _verifyRequest: { reference: string; serial: number } | null = null;
}
