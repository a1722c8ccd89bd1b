/**
 * Upstream credentials for pull-through cache rules. ECR reads them from Secrets Manager, named
 * `arn:aws:secretsmanager:<region>:<account>:secret:ecr-pullthroughcache/<name>`; Berth keeps them in its own
 * database, sealed (AES-256-GCM) under a key derived from the server secret key — as access-key secrets are —, managed
 * with `berth admin secret create|list|delete`, and named by the same ARN so `--credential-arn` works unchanged.
 */
import type { SecretBox } from '../auth/secrets.ts';
import { BerthError, ecrError } from '../errors/catalog.ts';
import type { PullThroughStore, SecretRow } from './store.ts';

/** What a rule authenticates to its upstream with: Basic credentials, or an AWS access key (ECR upstreams). */
export type UpstreamCredentials =
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'aws'; accessKeyId: string; secretAccessKey: string };

/** The HKDF purpose of the key that seals upstream credentials (a key of its own, derived from the server key). */
export const UPSTREAM_SECRET_PURPOSE = 'berth upstream credentials v1';

/** Secrets Manager's prefix for the secrets ECR's pull-through cache may read. */
export const SECRET_NAME_PREFIX = 'ecr-pullthroughcache/';
/** A secret name after the prefix (the model's CredentialArn grammar). */
export const SECRET_NAME = /^[a-zA-Z0-9/_+=.@-]{1,512}$/;
const CREDENTIAL_ARN = /^arn:aws(-\w+)*:secretsmanager:([a-zA-Z0-9-]+):([0-9]{12}):secret:ecr-pullthroughcache\/([a-zA-Z0-9/_+=.@-]+)$/;

export interface SecretSummary {
  name: string;
  arn: string;
  kind: UpstreamCredentials['kind'];
  /** The username or access key id (never the secret part). */
  identity: string;
  createdAt: number;
  updatedAt: number | null;
}

export class UpstreamSecrets {
  constructor(
    private readonly store: PullThroughStore,
    /** Seals with the upstream-credentials key (`new SecretBox(serverBox.derive(UPSTREAM_SECRET_PURPOSE))`). */
    private readonly box: SecretBox,
    private readonly identity: { accountId: string; region: string },
  ) {}

  arnOf(name: string): string {
    return `arn:aws:secretsmanager:${this.identity.region}:${this.identity.accountId}:secret:${SECRET_NAME_PREFIX}${name}`;
  }

  /** The secret name in `nameOrArn`: a credential ARN, `ecr-pullthroughcache/<name>` or `<name>`. Throws a plain Error when malformed. */
  static nameOf(nameOrArn: string): string {
    const m = CREDENTIAL_ARN.exec(nameOrArn);
    const name = m ? m[4] : nameOrArn.startsWith(SECRET_NAME_PREFIX) ? nameOrArn.slice(SECRET_NAME_PREFIX.length) : nameOrArn;
    if (!SECRET_NAME.test(name)) throw new Error(`invalid secret name "${nameOrArn}": 1–512 of letters, digits and /_+=.@-`);
    return name;
  }

  /** Creates or replaces a secret; `created` is false when it replaced one. */
  async put(name: string, credentials: UpstreamCredentials, now = Date.now()): Promise<{ summary: SecretSummary; created: boolean }> {
    const valid = UpstreamSecrets.nameOf(name);
    const payload = credentials.kind === 'basic'
      ? { username: credentials.username, password: credentials.password }
      : { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey };
    const row = { name: valid, kind: credentials.kind, sealed: this.box.seal(JSON.stringify(payload)), created_at: now, updated_at: null };
    const created = await this.store.putSecret(row);
    return { summary: this.summary((await this.store.findSecret(valid))!), created };
  }

  async list(): Promise<SecretSummary[]> {
    return (await this.store.listSecrets()).map((r) => this.summary(r));
  }

  async has(name: string): Promise<boolean> {
    return (await this.store.findSecret(UpstreamSecrets.nameOf(name))) !== null;
  }

  async delete(name: string): Promise<boolean> {
    return this.store.deleteSecret(UpstreamSecrets.nameOf(name));
  }

  /** Prefixes of the rules that use the secret `name`. */
  async usedBy(name: string): Promise<string[]> {
    return this.store.rulesUsingCredential(`:secret:${SECRET_NAME_PREFIX}${UpstreamSecrets.nameOf(name)}`);
  }

  /**
   * The credentials a rule's `credentialArn` names. SecretNotFoundException when there is no such secret;
   * UnableToAccessSecretException when the ARN names another account or region (this registry holds its own
   * secrets only); UnableToDecryptSecretValueException when the sealed value does not open (the server key changed)
   * or is not credentials.
   */
  async resolve(arn: string): Promise<UpstreamCredentials> {
    const m = CREDENTIAL_ARN.exec(arn);
    if (!m) throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'credentialArn' failed to satisfy constraint: 'must be a Secrets Manager ARN arn:aws:secretsmanager:<region>:<account>:secret:ecr-pullthroughcache/<name>'`);
    const [, , region, account, name] = m;
    if (account !== this.identity.accountId || region !== this.identity.region) {
      throw new BerthError('UNABLE_TO_ACCESS_SECRET', `The secret '${arn}' belongs to account ${account} in ${region}: this registry reads only its own secrets (account ${this.identity.accountId}, ${this.identity.region})`);
    }
    // Secrets Manager's full ARNs end in `-` and six random characters; Berth's names have none, so accept either.
    const row = (await this.store.findSecret(name)) ?? (/-[A-Za-z0-9]{6}$/.test(name) ? await this.store.findSecret(name.slice(0, -7)) : null);
    if (!row) throw ecrError('SECRET_NOT_FOUND', { arn });
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(this.box.open(row.sealed)) as Record<string, unknown>;
    } catch {
      throw new BerthError('UNABLE_TO_DECRYPT_SECRET', `The secret '${arn}' cannot be decrypted with this server's secret key (auth.secretKey): create it again with \`berth admin secret create\``);
    }
    if (row.kind === 'basic' && typeof value.username === 'string' && typeof value.password === 'string') {
      return { kind: 'basic', username: value.username, password: value.password };
    }
    if (row.kind === 'aws' && typeof value.accessKeyId === 'string' && typeof value.secretAccessKey === 'string') {
      return { kind: 'aws', accessKeyId: value.accessKeyId, secretAccessKey: value.secretAccessKey };
    }
    throw new BerthError('UNABLE_TO_DECRYPT_SECRET', `The secret '${arn}' does not hold upstream credentials`);
  }

  private summary(row: SecretRow): SecretSummary {
    let identity = '';
    try {
      const v = JSON.parse(this.box.open(row.sealed)) as { username?: string; accessKeyId?: string };
      identity = v.username ?? v.accessKeyId ?? '';
    } catch {
      identity = '(cannot be decrypted with this server key)';
    }
    return { name: row.name, arn: this.arnOf(row.name), kind: row.kind as UpstreamCredentials['kind'], identity, createdAt: row.created_at, updatedAt: row.updated_at };
  }
}
