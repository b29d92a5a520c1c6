/**
 * Shapes of the server's JSON (docs/jupyter.md, "Server routes"). Only the fields the panel reads
 * are typed; everything else passes through as `unknown`.
 */

export interface IExperiment {
  id: string;
  name: string;
  artifact_location?: string | null;
}

/** One row of `GET runs`: run columns, `metrics.*`, `params.*` and the status columns. */
export interface IRunRow {
  run_id: string;
  run_name?: string | null;
  status?: string | null;
  start_time?: string | null;
  end_time?: string | null;
  draft?: boolean | string | null;
  draft_ref?: string | null;
  published?: string | null;
  digest?: string | null;
  signed?: boolean | null;
  scan?: string | null;
  [column: string]: unknown;
}

export interface IRunsPage {
  runs: IRunRow[];
  columns: string[];
  next_page_token?: string | null;
}

export interface IFileEntry {
  path: string;
  size: number;
  sha256?: string | null;
}

export interface ILayer {
  media_type: string;
  digest: string;
  size: number;
  path?: string | null;
  files?: IFileEntry[];
  files_truncated?: number | null;
  error?: string | null;
}

/** A draft kit as `GET runs/<id>` lists it: its reference and layers with their file index. */
export interface IDraftKit {
  reference: string;
  digest?: string | null;
  layers: ILayer[];
}

export interface ILoggedModel {
  name: string;
  model_id?: string | null;
  flavors?: string[] | Record<string, unknown> | null;
  /** MLflow 3: a logged model lives in a draft kit of its own (`STORE:m-<id>`), not the run's. */
  draft?: IDraftKit | null;
}

export interface IRunDetail {
  run: Record<string, unknown> & { run_id?: string; run_name?: string };
  draft: IDraftKit | null;
  models: ILoggedModel[];
  provenance_preview?: unknown;
}

export interface IExplanation {
  what?: string;
  when?: string;
  fix?: string;
}

export interface IFinding {
  path: string;
  severity: string;
  rule: string;
  message: string;
  evidence?: string;
  explanation?: IExplanation | null;
  accepted?: number[] | number | null;
}

export interface IScanReport {
  target?: string;
  findings: IFinding[];
  summary?: {
    files?: number;
    findings?: Record<string, number>;
    max_severity?: string | null;
    max_open_severity?: string | null;
  };
}

export type JobState = 'queued' | 'running' | 'done' | 'failed';

export interface IJob<R = unknown> {
  id: string;
  kind?: string;
  state: JobState;
  stage?: string | null;
  done?: number | null;
  total?: number | null;
  stages?: Array<string | { name: string; [k: string]: unknown }> | null;
  result?: R | null;
  error?: string | IJobError | null;
  started?: string | null;
  finished?: string | null;
}

/** A failed job's error: a line, or (a policy block) the report and threshold. */
export interface IJobError {
  error: string;
  blocked?: boolean;
  report?: IScanReport;
  threshold?: string;
}

export interface IPublishResult {
  reference: string;
  digest: string;
  pinned?: string | null;
  model_uri?: string | null;
  verdict?: string | null;
  attachments?: unknown;
  accepted?: unknown;
  /** the published kit's own scan findings (what the verdict is made of) */
  findings?: IFinding[];
  model_version?: string | number | null;
  /** recipient key ids (SHA-256 of the public key's DER) when the kit was published encrypted */
  encrypted_for?: string[];
  run_url?: string | null;
}

export interface ICheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface IVerifyResult {
  reference: string;
  digest: string;
  verified: boolean;
  checks: ICheck[];
  notes?: string[];
  acceptances?: unknown[];
}

export interface IKitRow {
  tag?: string | null;
  digest: string;
  size?: number | null;
  type?: string | null;
  created?: string | null;
  draft?: boolean | null;
  run_id?: string | null;
  signed?: boolean | null;
  /** layers encrypted for recipients (`publish --encrypt-for`) */
  encrypted?: boolean | null;
  [column: string]: unknown;
}

export interface ISettingRow {
  setting: string;
  value: unknown;
  source?: string | null;
}

export interface IServerSettings {
  tracking_uri?: string | null;
  mlflow_ui_url?: string | null;
  config?: ISettingRow[];
  [k: string]: unknown;
}

/** The user's settings (schema/plugin.json). */
export interface IPanelSettings {
  trackingUri: string;
  defaultRepository: string;
  keyPath: string;
  metricColumns: string[];
  paramColumns: string[];
  pageSize: number;
}

export const DEFAULT_SETTINGS: IPanelSettings = {
  trackingUri: '',
  defaultRepository: '',
  keyPath: '',
  metricColumns: [],
  paramColumns: [],
  pageSize: 25
};
