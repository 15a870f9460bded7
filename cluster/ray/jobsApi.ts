// A small client of the Ray Jobs REST API served by the Ray dashboard. Answers are parsed with
// zod; failures are sorted into "the head is unreachable" (retry later, never a verdict about a
// node), "the token was refused" (a configuration error) and any other refusal.
import http from 'node:http';
import https from 'node:https';
import { z } from 'zod';

/** Ray job states; PENDING and RUNNING are live, the rest final. */
export const RAY_JOB_STATUSES = ['PENDING', 'RUNNING', 'STOPPED', 'SUCCEEDED', 'FAILED'] as const;
export type RayJobStatus = (typeof RAY_JOB_STATUSES)[number];
export const TERMINAL_STATUSES: readonly RayJobStatus[] = ['STOPPED', 'SUCCEEDED', 'FAILED'];

const jobInfoSchema = z.object({
  submission_id: z.string().nullable(),
  status: z.enum(RAY_JOB_STATUSES),
  entrypoint: z.string(),
  message: z.string().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  runtime_env: z.record(z.string(), z.unknown()).nullish(),
  driver_exit_code: z.number().int().nullish(),
  start_time: z.number().nullish(),
  end_time: z.number().nullish(),
});
export type RayJobInfo = z.infer<typeof jobInfoSchema>;

export interface RayJobSubmission {
  entrypoint: string;
  submission_id: string;
  runtime_env: Record<string, unknown>;
  metadata: Record<string, string>;
  entrypoint_num_cpus: number;
  entrypoint_num_gpus: number;
  entrypoint_memory: number;
  entrypoint_resources: Record<string, number>;
}

/** The dashboard did not answer (connection refused, timeout, 502/503/504): try again later. */
export class RayUnreachableError extends Error {}
/** The dashboard refused the token (401/403): set ROVER_RAY_AUTH_TOKEN or RAY_AUTH_TOKEN. */
export class RayAuthError extends Error {}
/** Any other refusal; `status` is the HTTP status. */
export class RayApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(message);
  }
}

export interface RayJobsClientOptions {
  /** Dashboard URL, e.g. http://127.0.0.1:8265. */
  address: string;
  /** Sent as `Authorization: Bearer <token>` when set. */
  token?: string;
  /** Per-request timeout. */
  timeoutMs: number;
}

const UNAVAILABLE = [502, 503, 504];

interface HttpAnswer {
  status: number;
  ok: boolean;
  text: string;
}

export class RayJobsClient {
  private readonly base: string;

  constructor(private readonly options: RayJobsClientOptions) {
    this.base = options.address.replace(/\/+$/, '');
  }

  get address(): string {
    return this.base;
  }

  /** Submits a job. Returns false when a job with this submission id exists already. */
  async submit(job: RayJobSubmission): Promise<boolean> {
    const res = await this.request('POST', '/api/jobs/', JSON.stringify(job));
    if (res.ok) return true;
    const body = res.text;
    // Ray answers a duplicate submission id with a 500 (or 400) carrying this text.
    if (/already exists/i.test(body)) return false;
    throw this.refusal(res.status, body, `submitting Ray job ${job.submission_id}`);
  }

  /** The job's info, or undefined when Ray does not know the submission id. */
  async get(submissionId: string): Promise<RayJobInfo | undefined> {
    const res = await this.request('GET', `/api/jobs/${encodeURIComponent(submissionId)}`);
    if (res.status === 404) return undefined;
    const body = res.text;
    if (!res.ok) throw this.refusal(res.status, body, `reading Ray job ${submissionId}`);
    return jobInfoSchema.parse(JSON.parse(body));
  }

  /** Every job the cluster knows (the Jobs API has no filter; callers filter by metadata). */
  async list(): Promise<RayJobInfo[]> {
    const res = await this.request('GET', '/api/jobs/');
    const body = res.text;
    if (!res.ok) throw this.refusal(res.status, body, 'listing Ray jobs');
    return z.array(jobInfoSchema).parse(JSON.parse(body));
  }

  /** The job's whole log (driver stdout and stderr), or undefined when the job is unknown. */
  async logs(submissionId: string): Promise<string | undefined> {
    const res = await this.request('GET', `/api/jobs/${encodeURIComponent(submissionId)}/logs`);
    if (res.status === 404) return undefined;
    const body = res.text;
    if (!res.ok) throw this.refusal(res.status, body, `reading logs of Ray job ${submissionId}`);
    return z.object({ logs: z.string() }).parse(JSON.parse(body)).logs;
  }

  /** Asks Ray to stop the job (SIGTERM, then SIGKILL after Ray's grace). False if unknown or already over. */
  async stop(submissionId: string): Promise<boolean> {
    const res = await this.request('POST', `/api/jobs/${encodeURIComponent(submissionId)}/stop`);
    if (res.status === 404) return false;
    const body = res.text;
    if (!res.ok) throw this.refusal(res.status, body, `stopping Ray job ${submissionId}`);
    return z.object({ stopped: z.boolean() }).parse(JSON.parse(body)).stopped;
  }

  /** Deletes a finished job and its logs. False when Ray does not know it. */
  async delete(submissionId: string): Promise<boolean> {
    const res = await this.request('DELETE', `/api/jobs/${encodeURIComponent(submissionId)}`);
    if (res.status === 404) return false;
    const body = res.text;
    if (!res.ok) throw this.refusal(res.status, body, `deleting Ray job ${submissionId}`);
    return true;
  }

  /** True when the package (e.g. `gcs://_ray_pkg_<hash>.zip`) is stored; the check also pins it for a while. */
  async packageExists(uri: string): Promise<boolean> {
    const res = await this.request('GET', `/api/packages/${packagePath(uri)}`);
    if (res.status === 404) return false;
    const body = res.text;
    if (!res.ok) throw this.refusal(res.status, body, `checking Ray package ${uri}`);
    return true;
  }

  async uploadPackage(uri: string, zip: Buffer): Promise<void> {
    const res = await this.request('PUT', `/api/packages/${packagePath(uri)}`, zip);
    const body = res.text;
    if (!res.ok) throw this.refusal(res.status, body, `uploading Ray package ${uri}`);
  }

  /**
   * One HTTP exchange. node:http rather than fetch: fetch adds Sec-Fetch-* headers, and the
   * dashboard refuses PUT/POST/DELETE from anything that looks like a browser.
   */
  private request(method: string, path: string, body?: string | Uint8Array): Promise<HttpAnswer> {
    const url = new URL(this.base + path);
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (typeof body === 'string') headers['content-type'] = 'application/json';
    if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    const unreachable = (why: string) => new RayUnreachableError(`Ray dashboard ${this.base} unreachable (${method} ${path}): ${why}`);
    return new Promise<HttpAnswer>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? https : http).request(url, { method, headers, timeout: this.options.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(unreachable(err.message)));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (UNAVAILABLE.includes(status)) reject(unreachable(`HTTP ${status}`));
          else resolve({ status, ok: status >= 200 && status < 300, text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.options.timeoutMs} ms`)));
      req.on('error', (err) => reject(unreachable(err.message)));
      req.end(body);
    });
  }

  private refusal(status: number, body: string, what: string): Error {
    const text = body.trim().split('\n').slice(-3).join(' ').slice(0, 500);
    if (status === 401 || status === 403) {
      return new RayAuthError(
        `Ray dashboard ${this.base} refused ${what} (HTTP ${status}: ${text}): the cluster requires a token; set ROVER_RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN) for the Rover worker`,
      );
    }
    return new RayApiError(`Ray dashboard ${this.base} refused ${what}: HTTP ${status}: ${text}`, status, body);
  }
}

function packagePath(uri: string): string {
  const match = /^([a-z]+):\/\/(.+)$/.exec(uri);
  if (!match) throw new Error(`not a Ray package URI: ${uri}`);
  return `${match[1]}/${encodeURIComponent(match[2]!)}`;
}
