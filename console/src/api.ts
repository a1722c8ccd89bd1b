/**
 * The console's only way to the server: Berth's own APIs, as the signed-in user. The ECR JSON API (`POST /`,
 * `X-Amz-Target`), typed with the ECR model's request and response shapes (@aws-sdk/client-ecr, timestamps as the
 * epoch seconds the wire carries), and /berth/api/v1 and /console/api, typed with the server's own shapes.
 * The session cookie is HttpOnly: this code never sees it. Mutating calls carry the session's anti-CSRF token.
 */
import type * as ecrTypes from '@aws-sdk/client-ecr';
import type { RepositorySummaryPage, SessionInfo, SignInRequest } from '../../src/http/console/api.ts';

/** A response shape as JSON carries it: Date fields are epoch seconds. */
export type Wire<T> = T extends Date ? number : T extends (infer U)[] ? Wire<U>[] : T extends object ? { [K in keyof T]: Wire<T[K]> } : T;

interface Operations {
  DescribeRepositories: [ecrTypes.DescribeRepositoriesRequest, ecrTypes.DescribeRepositoriesResponse];
  DescribeImages: [ecrTypes.DescribeImagesRequest, ecrTypes.DescribeImagesResponse];
  BatchGetImage: [ecrTypes.BatchGetImageRequest, ecrTypes.BatchGetImageResponse];
  BatchDeleteImage: [ecrTypes.BatchDeleteImageRequest, ecrTypes.BatchDeleteImageResponse];
  DescribeImageScanFindings: [ecrTypes.DescribeImageScanFindingsRequest, ecrTypes.DescribeImageScanFindingsResponse];
  StartImageScan: [ecrTypes.StartImageScanRequest, ecrTypes.StartImageScanResponse];
  GetDownloadUrlForLayer: [ecrTypes.GetDownloadUrlForLayerRequest, ecrTypes.GetDownloadUrlForLayerResponse];
  GetLifecyclePolicy: [ecrTypes.GetLifecyclePolicyRequest, ecrTypes.GetLifecyclePolicyResponse];
  PutLifecyclePolicy: [ecrTypes.PutLifecyclePolicyRequest, ecrTypes.PutLifecyclePolicyResponse];
  DeleteLifecyclePolicy: [ecrTypes.DeleteLifecyclePolicyRequest, ecrTypes.DeleteLifecyclePolicyResponse];
  StartLifecyclePolicyPreview: [ecrTypes.StartLifecyclePolicyPreviewRequest, ecrTypes.StartLifecyclePolicyPreviewResponse];
  GetLifecyclePolicyPreview: [ecrTypes.GetLifecyclePolicyPreviewRequest, ecrTypes.GetLifecyclePolicyPreviewResponse];
  GetRepositoryPolicy: [ecrTypes.GetRepositoryPolicyRequest, ecrTypes.GetRepositoryPolicyResponse];
  SetRepositoryPolicy: [ecrTypes.SetRepositoryPolicyRequest, ecrTypes.SetRepositoryPolicyResponse];
  DeleteRepositoryPolicy: [ecrTypes.DeleteRepositoryPolicyRequest, ecrTypes.DeleteRepositoryPolicyResponse];
  PutImageTagMutability: [ecrTypes.PutImageTagMutabilityRequest, ecrTypes.PutImageTagMutabilityResponse];
  PutImageScanningConfiguration: [ecrTypes.PutImageScanningConfigurationRequest, ecrTypes.PutImageScanningConfigurationResponse];
  DescribePullThroughCacheRules: [ecrTypes.DescribePullThroughCacheRulesRequest, ecrTypes.DescribePullThroughCacheRulesResponse];
  DescribeImageReplicationStatus: [ecrTypes.DescribeImageReplicationStatusRequest, ecrTypes.DescribeImageReplicationStatusResponse];
  DescribeRegistry: [ecrTypes.DescribeRegistryRequest, ecrTypes.DescribeRegistryResponse];
}

export type Op = keyof Operations;
export type Out<K extends Op> = Wire<Operations[K][1]>;

export class ApiError extends Error {
  constructor(readonly status: number, readonly type: string, message: string) {
    super(message);
  }
}

let csrf: string | null = null;
let expired: () => void = () => {};

export function useSession(info: SessionInfo | null, onExpired: () => void): void {
  csrf = info?.csrf ?? null;
  expired = onExpired;
}

async function send<T>(url: string, init: RequestInit, quiet = false): Promise<T> {
  const res = await fetch(url, { ...init, credentials: 'same-origin', cache: 'no-store' });
  const text = await res.text();
  let body: any = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) {
    const type: string = body?.__type ?? body?.errors?.[0]?.code ?? `HTTP ${res.status}`;
    const message: string = body?.message ?? body?.errors?.[0]?.message ?? text.slice(0, 300) ?? res.statusText;
    if (!quiet && (type === 'ExpiredTokenException' || (res.status === 401 && /session/.test(message)))) expired();
    throw new ApiError(res.status, type, message);
  }
  return body as T;
}

function headers(extra: Record<string, string>): Record<string, string> {
  return csrf ? { ...extra, 'x-berth-csrf': csrf } : extra;
}

/** One ECR API call. */
export function ecr<K extends Op>(op: K, input: Operations[K][0]): Promise<Out<K>> {
  return send(`/`, {
    method: 'POST',
    headers: headers({ 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `AmazonEC2ContainerRegistry_V20150921.${op}` }),
    body: JSON.stringify(input),
  });
}

export function berth<T>(path: string): Promise<T> {
  return send(`/berth/api/v1${path}`, { method: 'GET', headers: headers({}) });
}

/** A mutating call to /berth/api/v1 (POST with the anti-CSRF header). */
export function post<T>(path: string, body?: unknown): Promise<T> {
  return send(`/berth/api/v1${path}`, { method: 'POST', headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify(body ?? {}) });
}

export const repositories = (query: { q: string; sort: string; order: string; offset: number; limit: number }, early = false) =>
  send<RepositorySummaryPage>(`/berth/api/v1/repositories?${new URLSearchParams({ ...query, offset: String(query.offset), limit: String(query.limit) })}`, {
    method: 'GET',
    // Before the session is known (a first load): marked as the console's, so that with no session the answer is
    // "session expired" (quietly ignored) rather than a Basic challenge.
    headers: early ? { 'x-berth-csrf': 'early' } : headers({}),
  }, early);

export const session = {
  get: () => send<SessionInfo>('/console/api/session', { method: 'GET' }),
  signIn: (req: SignInRequest) => send<SessionInfo>('/console/api/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(req) }),
  signOut: () => send<null>('/console/api/session', { method: 'DELETE', headers: headers({}) }),
};

/** Fetches a blob (an image config) through a GetDownloadUrlForLayer URL. */
export async function blobJson<T>(repositoryName: string, digest: string): Promise<T> {
  const { downloadUrl } = await ecr('GetDownloadUrlForLayer', { repositoryName, layerDigest: digest });
  if (!downloadUrl) throw new ApiError(500, 'NoUrl', 'no download URL');
  const u = new URL(downloadUrl);
  const res = await fetch(u.pathname + u.search, { credentials: 'same-origin' });
  if (!res.ok) throw new ApiError(res.status, 'Download', `could not read ${digest}: HTTP ${res.status}`);
  return res.json() as Promise<T>;
}
