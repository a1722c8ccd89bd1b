/** Table types for Kysely. Times are epoch milliseconds; sizes are bytes. */
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
}
