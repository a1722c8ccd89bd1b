/**
 * The events Berth emits, shaped as Amazon ECR's EventBridge events (the envelope `version`, `id`, `detail-type`,
 * `source: aws.ecr`, `account`, `time`, `region`, `resources`, `detail`; detail keys in kebab-case, as ECR's). The
 * outbox stores the detail type, the repository and the detail; the envelope's account and region are the
 * deployment's (`ecr.accountId`, `ecr.region`), added when an event is rendered. Pure: no I/O.
 */

export const DETAIL_TYPES = ['ECR Image Action', 'ECR Referrer Action', 'ECR Image Scan', 'ECR Pull Through Cache Action', 'ECR Replication Action'] as const;
export type DetailType = typeof DETAIL_TYPES[number];

export function isDetailType(value: string): value is DetailType {
  return (DETAIL_TYPES as readonly string[]).includes(value);
}

/** `ECR Image Action` / `ECR Referrer Action`: a push or a delete (by the OCI API, the ECR API or lifecycle expiry). */
export interface ImageActionDetail {
  'action-type': 'PUSH' | 'DELETE';
  result: 'SUCCESS';
  'repository-name': string;
  'image-digest': string;
  /** Present when the push or delete named (or removed) a tag. */
  'image-tag'?: string;
  'manifest-media-type'?: string;
  'artifact-media-type'?: string;
}

/** `ECR Image Scan`: a basic scan finished (one event per repository holding the image). */
export interface ImageScanDetail {
  'scan-status': 'COMPLETE' | 'FAILED';
  'repository-name': string;
  'image-digest': string;
  'image-tags': string[];
  /** Only the non-zero severities (absent when there is none). */
  'finding-severity-counts'?: Record<string, number>;
}

/** `ECR Pull Through Cache Action`: a manifest imported from a pull-through cache rule's upstream. */
export interface PullThroughDetail {
  'rule-version': string;
  'sync-status': 'SUCCESS' | 'FAILURE';
  'ecr-repository-prefix': string;
  'repository-name': string;
  'upstream-registry-url': string;
  'image-tag'?: string;
  'image-digest'?: string;
  'failure-code'?: string;
  'failure-reason'?: string;
}

/** `ECR Replication Action` (emitted by the replication consumer, not part of this module's producers). */
export interface ReplicationDetail {
  'action-type': 'REPLICATE';
  result: 'SUCCESS' | 'FAILED';
  'repository-name': string;
  'image-digest': string;
  'image-tag'?: string;
  'source-account': string;
  'source-region': string;
  /** Berth's addition: the destination the result is about (the event is recorded at the source). */
  'destination-account'?: string;
  'destination-region'?: string;
}

export type NewEvent =
  | { detailType: 'ECR Image Action' | 'ECR Referrer Action'; repository: string; detail: ImageActionDetail }
  | { detailType: 'ECR Image Scan'; repository: string; detail: ImageScanDetail }
  | { detailType: 'ECR Pull Through Cache Action'; repository: string; detail: PullThroughDetail }
  | { detailType: 'ECR Replication Action'; repository: string; detail: ReplicationDetail };

/** An event as the outbox holds it. `seq` orders events; `id` is stable across redeliveries (receivers deduplicate by it). */
export interface StoredEvent {
  seq: number;
  id: string;
  detailType: string;
  repository: string;
  detail: Record<string, unknown>;
  createdAt: number;
}

/** The EventBridge envelope, as webhooks receive it. */
export interface EcrEvent {
  version: '0';
  id: string;
  'detail-type': string;
  source: 'aws.ecr';
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Record<string, unknown>;
}

export interface EventIdentity {
  account: string;
  region: string;
}

/** ISO-8601 UTC without a fraction, as EventBridge writes `time`. */
export function eventTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

export function repositoryArn(identity: EventIdentity, repository: string): string {
  return `arn:aws:ecr:${identity.region}:${identity.account}:repository/${repository}`;
}

/** ECR's `resources`: empty for image and referrer actions, the repository's ARN for the others. */
export function renderEvent(e: StoredEvent, identity: EventIdentity): EcrEvent {
  const action = e.detailType === 'ECR Image Action' || e.detailType === 'ECR Referrer Action';
  return {
    version: '0',
    id: e.id,
    'detail-type': e.detailType,
    source: 'aws.ecr',
    account: identity.account,
    time: eventTime(e.createdAt),
    region: identity.region,
    resources: action ? [] : [repositoryArn(identity, e.repository)],
    detail: e.detail,
  };
}

/** The severity counts of an `ECR Image Scan` event: only the severities with findings. */
export function severityCounts(severities: Iterable<string>): Record<string, number> | undefined {
  const counts: Record<string, number> = {};
  for (const s of severities) counts[s] = (counts[s] ?? 0) + 1;
  return Object.keys(counts).length ? counts : undefined;
}

/**
 * A repository filter with ECR's wildcard rule: `*` matches any run of characters (`/` included), everything else
 * matches itself; an empty filter or `*` matches every repository.
 */
export function matchesRepository(filter: string, repository: string): boolean {
  if (filter === '' || filter === '*') return true;
  const re = new RegExp(`^${filter.replace(/[.+^${}()|[\]\\?]/g, '\\$&').replace(/\*/g, '.*')}$`);
  return re.test(repository);
}
