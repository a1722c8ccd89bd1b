/**
 * The shapes of the console's own endpoints (/console/api/session) and of Berth's repository summaries
 * (/berth/api/v1/repositories). Types only, no imports: the browser code (console/) imports this file, as it imports
 * the ECR shapes from @aws-sdk/client-ecr, so both sides compile against one definition.
 */

export interface SessionUser {
  name: string;
  arn: string;
  admin: boolean;
  accessKeyId: string;
}

/** GET /console/api/session, and the answer to a sign-in. */
export interface SessionInfo {
  /** Access control is on: the console needs a sign-in. */
  authEnabled: boolean;
  /** The signed-in user (null: signed out, or access control off). */
  user: SessionUser | null;
  /** The anti-CSRF token to send in `x-berth-csrf` on every mutating call (null when signed out). */
  csrf: string | null;
  /** Epoch milliseconds when the session ends. */
  expiresAt: number | null;
  /** The host images are pulled from (`HOST/repository:tag`). */
  registryHost: string;
  /** The ECR registry (account) id. */
  registryId: string;
}

/** POST /console/api/session: an access key id and secret, or a registry token from `aws ecr get-login-password`. */
export type SignInRequest = { accessKeyId: string; secretAccessKey: string } | { token: string };

export type RepositorySort = 'name' | 'size' | 'images' | 'pushed';

export interface RepositorySummary {
  repositoryName: string;
  imageCount: number;
  /** Sum of the images' sizes (config + layers per image, as ECR's imageSizeInBytes). */
  sizeInBytes: number;
  /** Epoch seconds, as the ECR API gives times; null when nothing was pushed. */
  lastPushedAt: number | null;
  createdAt: number;
}

/** GET /berth/api/v1/repositories?q=&sort=&order=&offset=&limit= — the repositories the caller may describe. */
export interface RepositorySummaryPage {
  total: number;
  offset: number;
  limit: number;
  repositories: RepositorySummary[];
}
