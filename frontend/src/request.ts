/**
 * The one place the panel talks to the server: `<baseUrl>/mlflow-modelkit/<endpoint>` through
 * `ServerConnection.makeRequest` (which adds the XSRF token and the auth header). Errors become an
 * `ApiError` whose message is the server's one line (`{"error": …}`); request bodies (which may
 * carry a passphrase) are never logged or put in an error.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  IExperiment,
  IJob,
  IKitRow,
  IPublishResult,
  IRunDetail,
  IRunsPage,
  IScanReport,
  IServerSettings,
  IVerifyResult
} from './types';

export const API_NAMESPACE = 'mlflow-modelkit';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body: unknown = null
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** `endpoint` may carry a query string; `query` values are URL-encoded and empty ones dropped. */
export function endpointUrl(
  baseUrl: string,
  endpoint: string,
  query: Record<string, string | undefined> = {}
): string {
  const params = Object.entries(query)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(
      ([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v as string)}`
    )
    .join('&');
  const url = URLExt.join(baseUrl, API_NAMESPACE, endpoint);
  return params ? `${url}${url.includes('?') ? '&' : '?'}${params}` : url;
}

export async function requestAPI<T>(
  endpoint: string,
  settings: ServerConnection.ISettings,
  init: RequestInit = {},
  query: Record<string, string | undefined> = {}
): Promise<T> {
  const url = endpointUrl(settings.baseUrl, endpoint, query);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    if ((error as Error)?.name === 'AbortError') {
      throw error;
    }
    throw new ApiError(
      `cannot reach the Jupyter server (${(error as Error)?.message ?? error})`,
      0
    );
  }
  const text = await response.text();
  let data: unknown = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const line =
      data && typeof data === 'object' && 'error' in data
        ? String((data as { error: unknown }).error)
        : response.status === 404
          ? `${endpoint.split('?')[0]}: not found (is the jupyter_ext server extension enabled?)`
          : `${response.status} ${response.statusText || 'error'}`;
    throw new ApiError(line.split('\n')[0], response.status, data);
  }
  return data as T;
}

function post(body: unknown, signal?: AbortSignal): RequestInit {
  return { method: 'POST', body: JSON.stringify(body), signal };
}

/** The typed routes of docs/jupyter.md. `user` carries the panel settings sent with each request. */
export class ModelKitsAPI {
  constructor(
    readonly settings: ServerConnection.ISettings,
    private readonly user: () => { trackingUri?: string } = () => ({})
  ) {}

  private common(): Record<string, string | undefined> {
    const t = this.user().trackingUri;
    return t ? { tracking_uri: t } : {};
  }

  serverSettings(): Promise<IServerSettings> {
    return requestAPI('settings', this.settings, {}, this.common());
  }

  experiments(): Promise<{ experiments: IExperiment[] }> {
    return requestAPI('experiments', this.settings, {}, this.common());
  }

  runs(
    query: Record<string, string>,
    signal?: AbortSignal
  ): Promise<IRunsPage> {
    return requestAPI(
      'runs',
      this.settings,
      { signal },
      { ...this.common(), ...query }
    );
  }

  run(runId: string): Promise<IRunDetail> {
    return requestAPI(
      `runs/${encodeURIComponent(runId)}`,
      this.settings,
      {},
      this.common()
    );
  }

  scan(runId: string): Promise<IJob<IScanReport>> {
    return requestAPI(
      `runs/${encodeURIComponent(runId)}/scan`,
      this.settings,
      post({}),
      this.common()
    );
  }

  /** The body is built and sent here only; the caller drops its passphrase right after. */
  publish(body: IPublishRequest): Promise<IJob<IPublishResult>> {
    return requestAPI('publish', this.settings, post(body), this.common());
  }

  verify(reference: string, deep = false): Promise<IJob<IVerifyResult>> {
    return requestAPI(
      'verify',
      this.settings,
      post({ reference, deep }),
      this.common()
    );
  }

  kits(repository: string): Promise<IKitRow[] | { kits: IKitRow[] }> {
    return requestAPI(
      'kits',
      this.settings,
      {},
      { ...this.common(), repository }
    );
  }

  job<R>(id: string, signal?: AbortSignal): Promise<IJob<R>> {
    return requestAPI(`jobs/${encodeURIComponent(id)}`, this.settings, {
      signal
    });
  }
}

export interface IPublishRequest {
  run_id: string;
  tag: string;
  model?: string;
  repository?: string;
  key?: string;
  passphrase?: string;
  register_as?: string;
  accept?: string[];
  reason?: string;
}

/** `GET kits` rows whether the server sends a list or `{kits: [...]}`. */
export function kitRows(
  data: IKitRow[] | { kits: IKitRow[] } | null
): IKitRow[] {
  if (!data) {
    return [];
  }
  return Array.isArray(data) ? data : (data.kits ?? []);
}
