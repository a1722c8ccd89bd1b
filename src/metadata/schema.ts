/**
 * Table types for Kysely: every table of the metadata database, one interface each, created by the migrations in
 * `migrations/index.ts`. Times are epoch milliseconds; sizes are bytes.
 */
import type { Generated } from 'kysely';

export interface RepositoriesTable {
  id: Generated<number>;
  name: string;
  created_at: number;
  image_tag_mutability: Generated<string>;
  /** JSON list of {filterType, filter} */
  tag_mutability_filters: string | null;
  scan_on_push: Generated<number>;
  encryption_type: Generated<string>;
  kms_key: string | null;
  /** Repository policy document (JSON text) */
  policy: string | null;
  /** Lifecycle policy text, verbatim */
  lifecycle_policy: string | null;
  lifecycle_evaluated_at: number | null;
}

export interface LifecyclePreviewsTable {
  repository_id: number;
  policy_text: string;
  status: string;
  /** JSON: the preview results */
  results: string;
  created_at: number;
}

export interface LifecycleExpirationsTable {
  id: Generated<number>;
  repository_name: string;
  digest: string;
  /** JSON list */
  tags: string;
  pushed_at: number;
  rule_priority: number;
  action: string;
  /** what expired it: `scheduler`, `cli`, or an ARN */
  actor: string;
  expired_at: number;
}

export interface RepositoryTagsTable {
  repository_id: number;
  key: string;
  value: string;
}

export interface UsersTable {
  id: string;
  name: string;
  admin: number;
  created_at: number;
}

export interface AccessKeysTable {
  id: string;
  user_id: string;
  /** encrypted with the server's secret key */
  secret: string;
  status: string;
  created_at: number;
}

export interface UserPoliciesTable {
  user_id: string;
  name: string;
  document: string;
  created_at: number;
}

export interface AccessEpochTable {
  id: number;
  epoch: number;
}

export interface BlobsTable {
  digest: string;
  size: number;
  created_at: number;
  touched_at: Generated<number>;
  state: Generated<string>;
}

/** A blob's data key, wrapped under one key-encryption key (one row per key that may unwrap it). */
export interface BlobKeysTable {
  digest: string;
  /** `master:<id>` or `kms:<name>:<fingerprint>` */
  key_ref: string;
  wrapped_dek: Buffer;
  created_at: number;
}

export interface GcRunsTable {
  id: Generated<number>;
  started_at: number;
  finished_at: number;
  blobs_deleted: number;
  bytes_reclaimed: number;
  uploads_purged: number;
  dry_run: number;
}

export interface RepositoryBlobsTable {
  repository_id: number;
  digest: string;
  created_at: number;
}

export interface ManifestsTable {
  repository_id: number;
  digest: string;
  media_type: string;
  size: number;
  content: Buffer;
  artifact_type: string | null;
  subject: string | null;
  config_digest: string | null;
  annotations: string | null;
  /** Config + layers, as ECR reports imageSizeInBytes (0 for an index). */
  content_size: number;
  pushed_at: number;
  last_pulled_at: number | null;
}

export interface ManifestReferencesTable {
  repository_id: number;
  manifest_digest: string;
  /** A blob (config/layer) or a child manifest the manifest needs. */
  target_digest: string;
  kind: 'blob' | 'manifest';
}

export interface TagsTable {
  repository_id: number;
  name: string;
  digest: string;
  updated_at: number;
}

export interface UploadsTable {
  id: string;
  repository_id: number;
  created_at: number;
  updated_at: number;
  /** Encrypted uploads: the upload's own data key, wrapped under `seal_key_ref` (null: staged in plaintext). */
  seal_key_ref: string | null;
  seal_wrapped_dek: Buffer | null;
  /** The sealed plaintext after the last whole staged frame, and how many whole frames it follows. */
  tail_frames: number | null;
  tail: Buffer | null;
}

/** A background job's lease and the record of its last run (`jobs/leases.ts`). */
export interface JobLeasesTable {
  name: string;
  holder: string | null;
  expires_at: Generated<number>;
  last_started_at: number | null;
  last_finished_at: number | null;
  last_status: string | null;
  last_error: string | null;
  last_holder: string | null;
  runs: Generated<number>;
}

export type ScanState = 'PENDING' | 'IN_PROGRESS' | 'COMPLETE' | 'FAILED' | 'UNSUPPORTED_IMAGE';

/** One image's scan: its place in the queue and, once finished, its results (`scan/store.ts`). */
export interface ImageScansTable {
  digest: string;
  status: ScanState;
  description: string | null;
  requested_at: number;
  started_at: number | null;
  completed_at: number | null;
  /** The vulnerability database version the findings were matched against. */
  db_version: number | null;
  /** When the vulnerability data used was last imported (ECR's vulnerabilitySourceUpdatedAt). */
  source_updated_at: number | null;
  claimed_by: string | null;
  /** JSON: the findings */
  findings: string | null;
  /** JSON: count per severity */
  severity_counts: string | null;
  /** JSON: the packages found (what SBOMs are written from) */
  inventory: string | null;
}

/** Registry-wide scanning settings, JSON values by name. */
export interface ScanSettingsTable {
  name: string;
  value: string;
}

// The vulnerability database (`scan/vulndb/`), imported from OSV dumps.

export interface VulnSourcesTable {
  /** e.g. `Go`, `PyPI`, `AlmaLinux`: taken from the dump's file name unless `--source` names it. */
  name: string;
  /** Absolute path of the zip or directory last imported into this source. */
  origin: string;
  /** Licence / attribution text found beside the dump (`<Source>-LICENSE.txt`), or null when none was found. */
  license: string | null;
  imported_at: number;
  /** Records that belong to this source after the last import (withdrawn ones included). */
  record_count: Generated<number>;
  /** The newest `modified`/`published` time among the records of the last import, or null when none parses. */
  data_updated_at: number | null;
}

export interface VulnRecordsTable {
  /** OSV id (`GO-2022-0969`, `PYSEC-2021-1`, `ALSA-2024:1234` …). */
  id: string;
  /** The source that last wrote this record. */
  source: string;
  /** `modified` exactly as the record states it. */
  modified: string;
  /** 1 when the record carries `withdrawn`: kept, but never returned by lookups. */
  withdrawn: Generated<number>;
  /** The whole validated OSV record, as compact JSON (unknown fields kept). */
  record: string;
  /** sha256 (hex) of `record`: how an import tells an unchanged record from a changed one. */
  digest: string;
}

/**
 * One row per distinct (record, ecosystem, package name) of a record's `affected[]`. `ecosystem` is the full OSV
 * value with any release suffix (`AlmaLinux:8`); PyPI names are stored PEP 503-normalised, other names as written.
 */
export interface VulnAffectedTable {
  record_id: string;
  ecosystem: string;
  name: string;
}

/**
 * Which sources contain which records. The same advisory can ship in several dumps (a GHSA record sits in the
 * all.zip of every ecosystem it affects); pruning one source must not remove a record another source still has.
 */
export interface VulnRecordSourcesTable {
  source: string;
  record_id: string;
}

/** A single row (id = 1). */
export interface VulnMetaTable {
  id: number;
  /** Incremented by every import that changes what lookups return; scanners key their results on it. */
  db_version: number;
  updated_at: number;
}

/** A pull-through cache rule (pullthrough/rules.ts): a repository prefix served from an upstream registry. */
export interface PullThroughRulesTable {
  /** Without a trailing `/`; `ROOT` matches every repository. */
  ecr_repository_prefix: string;
  upstream_registry_url: string;
  upstream_registry: string;
  upstream_repository_prefix: string | null;
  credential_arn: string | null;
  custom_role_arn: string | null;
  /** 1 when the rule serves the transparent mirror of its upstream (Berth's extension). */
  mirror: Generated<number>;
  created_at: number;
  updated_at: number | null;
}

/** Upstream credentials (`berth admin secret`), named as Secrets Manager's `ecr-pullthroughcache/<name>`. */
export interface UpstreamSecretsTable {
  /** The part after `ecr-pullthroughcache/`. */
  name: string;
  /** `basic` (username, password) or `aws` (access key id, secret access key). */
  kind: string;
  /** The JSON credentials, sealed with the server key (auth/secrets.ts). */
  sealed: string;
  created_at: number;
  updated_at: number | null;
}

/** A repository creation template (pullthrough/templates.ts). */
export interface RepositoryCreationTemplatesTable {
  /** Without a trailing `/`; `ROOT` applies to every repository no other template matches. */
  prefix: string;
  description: string | null;
  encryption_type: string | null;
  kms_key: string | null;
  /** JSON list of {Key, Value} */
  resource_tags: string | null;
  image_tag_mutability: string | null;
  /** JSON list of {filterType, filter} */
  tag_mutability_filters: string | null;
  repository_policy: string | null;
  lifecycle_policy: string | null;
  /** JSON list of PULL_THROUGH_CACHE, CREATE_ON_PUSH, REPLICATION */
  applied_for: string;
  custom_role_arn: string | null;
  created_at: number;
  updated_at: number;
}

/** When a cached tag was last checked against its upstream (`pullthrough/cache.ts`). */
export interface PullThroughTagsTable {
  repository_id: number;
  tag: string;
  validated_at: number;
}

/** A node fetching `key` (a blob or manifest) from an upstream; the others wait for it (`pullthrough/cache.ts`). */
export interface PullThroughFetchesTable {
  key: string;
  holder: string;
  expires_at: number;
}

/** The event outbox (events/outbox-store.ts). */
export interface EventsTable {
  seq: Generated<number>;
  id: string;
  detail_type: string;
  repository: string;
  /** The event's `detail`, JSON. */
  detail: string;
  created_at: number;
}

export interface EventCursorsTable {
  consumer: string;
  last_seq: number;
  updated_at: number;
}

/** Replication (replication/): the registry's configuration (rules as ECR's JSON), one row per registry id. */
export interface ReplicationConfigurationTable {
  registry_id: string;
  rules: string;
  updated_at: number;
}

/** PutRegistryPolicy: which principals may replicate into this registry. */
export interface RegistryPoliciesTable {
  registry_id: string;
  policy: string;
  updated_at: number;
}

/** One image's replication to one destination: the worker's queue and DescribeImageReplicationStatus' answer. */
export interface ReplicationStatusTable {
  repository: string;
  digest: string;
  region: string;
  registry_id: string;
  status: 'IN_PROGRESS' | 'COMPLETE' | 'FAILED';
  /** JSON list of the tags pushed with it (re-pointed at the destination when they still name it here). */
  tags: string;
  /** The latest event that (re)opened the row, and its time (replication lag is measured from it). */
  event_seq: number;
  event_at: number;
  attempts: number;
  next_attempt_at: number;
  failure_code: string | null;
  last_error: string | null;
  updated_at: number;
  completed_at: number | null;
}

export interface WebhookSubscriptionsTable {
  id: string;
  url: string;
  /** JSON array of detail types (empty: all). */
  event_types: string;
  repository_filter: string;
  /** Sealed with the server key. */
  secret: string;
  created_at: number;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface WebhookDeliveriesTable {
  id: Generated<number>;
  subscription_id: string;
  event_seq: number;
  repository: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  last_status_code: number | null;
  latency_ms: number | null;
  created_at: number;
  finished_at: number | null;
}

/**
 * The audit trail (audit/): one row per mutating request, login, refused request or state-changing `berth` command,
 * written in batches after the response by the node that served it.
 */
export interface AuditEventsTable {
  id: Generated<number>;
  created_at: number;
  /** The node that wrote the row (`host/pid`), or `cli@host` for a command. */
  node: string;
  /** The caller's ARN, `anonymous`, or `cli` for a `berth` command. */
  principal: string;
  /** The IAM user name, or the OS user for a `berth` command. */
  user_name: string | null;
  access_key_id: string | null;
  source_address: string | null;
  user_agent: string | null;
  /** The IAM action, e.g. `ecr:PutImage`, `berth:Login`, `iam:CreateUser`. */
  action: string;
  /** The resource ARN, when the action is on one. */
  resource: string | null;
  repository: string | null;
  request_id: string;
  /** `success`, or the error code the caller got. */
  result: string;
  /** HTTP status (null for a command). */
  status: number | null;
  /** JSON: what else identifies the request (method, path, command), never a secret. */
  detail: string | null;
}

/** Web console sessions (migration 0016): the id is the SHA-256 of the cookie's token, never the token itself. */
export interface ConsoleSessionsTable {
  id: string;
  access_key_id: string;
  /** The per-session anti-CSRF token the console sends in `x-berth-csrf` on every mutating call. */
  csrf: string;
  created_at: number;
  expires_at: number;
}

export interface Database {
  repositories: RepositoriesTable;
  blobs: BlobsTable;
  repository_blobs: RepositoryBlobsTable;
  manifests: ManifestsTable;
  manifest_references: ManifestReferencesTable;
  tags: TagsTable;
  uploads: UploadsTable;
  repository_tags: RepositoryTagsTable;
  users: UsersTable;
  access_keys: AccessKeysTable;
  user_policies: UserPoliciesTable;
  access_epoch: AccessEpochTable;
  lifecycle_previews: LifecyclePreviewsTable;
  lifecycle_expirations: LifecycleExpirationsTable;
  gc_runs: GcRunsTable;
  blob_keys: BlobKeysTable;
  job_leases: JobLeasesTable;
  image_scans: ImageScansTable;
  scan_settings: ScanSettingsTable;
  vuln_sources: VulnSourcesTable;
  vuln_records: VulnRecordsTable;
  vuln_affected: VulnAffectedTable;
  vuln_record_sources: VulnRecordSourcesTable;
  vuln_meta: VulnMetaTable;
  pull_through_rules: PullThroughRulesTable;
  upstream_secrets: UpstreamSecretsTable;
  repository_creation_templates: RepositoryCreationTemplatesTable;
  pull_through_tags: PullThroughTagsTable;
  pull_through_fetches: PullThroughFetchesTable;
  events: EventsTable;
  event_cursors: EventCursorsTable;
  webhook_subscriptions: WebhookSubscriptionsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  audit_events: AuditEventsTable;
  replication_configuration: ReplicationConfigurationTable;
  registry_policies: RegistryPoliciesTable;
  replication_status: ReplicationStatusTable;
  console_sessions: ConsoleSessionsTable;
}
