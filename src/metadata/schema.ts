/** Table types for Kysely. Times are epoch milliseconds; sizes are bytes. */
import type { Generated } from 'kysely';

export interface RepositoriesTable {
  id: Generated<number>;
  name: string;
  created_at: number;
}

export interface BlobsTable {
  digest: string;
  size: number;
  created_at: number;
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
}

export interface Database {
  repositories: RepositoriesTable;
  blobs: BlobsTable;
  repository_blobs: RepositoryBlobsTable;
  manifests: ManifestsTable;
  manifest_references: ManifestReferencesTable;
  tags: TagsTable;
  uploads: UploadsTable;
}
