/**
 * AccessService: who is calling (SigV4, registry tokens, access keys over Basic auth) and whether they may do an
 * ECR action on a repository (identity policies + repository policy, evaluated by policy.ts).
 *
 * Authorization data is cached per node and keyed by the access epoch in the database, which every change to
 * users, keys and policies bumps: each request reads the epoch (one indexed row) and drops the caches when it
 * moved, so a revoked key or a new Deny takes effect on the very next request on every node.
 */
import { timingSafeEqual } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { BerthError } from '../errors/catalog.ts';
import type { AccessStore } from '../metadata/access-store.ts';
import type { MetadataStore } from '../metadata/store.ts';
import { newAccessKeyId, newSecretAccessKey, newUserId, repositoryArn, userArn } from './identity.ts';
import { evaluate, parsePolicy, type PolicyDocument } from './policy.ts';
import { SecretBox } from './secrets.ts';
import { describeUsers, type UserList } from './users.ts';
import { verifySigV4, type SigV4Input } from './sigv4.ts';
import { signClaims, signToken, verifyClaims, verifyToken, type TokenClaims } from './tokens.ts';

export type Principal =
  | { kind: 'user'; userId: string; name: string; arn: string; admin: boolean; accessKeyId: string }
  | { kind: 'anonymous' };

export const ANONYMOUS: Principal = { kind: 'anonymous' };

export interface AccessOptions {
  enabled: boolean;
  accountId: string;
  region: string;
  regions: readonly string[];
  tokenTtlSeconds: number;
}

export interface RequestContext {
  sourceIp?: string;
  secureTransport?: boolean;
}

interface KeyEntry {
  secret: string;
  active: boolean;
  user: { id: string; name: string; admin: boolean };
}

interface RepositoryAccess {
  policy: PolicyDocument | null;
  tags: Record<string, string>;
}

const TOKEN_CACHE_SIZE = 4096;

export class AccessService {
  private epoch = -1;
  private readonly keys = new Map<string, KeyEntry | null>();
  private readonly policies = new Map<string, PolicyDocument[]>();
  private readonly repositories = new Map<string, RepositoryAccess>();
  /**
   * Registry tokens whose signature checked out, with their claims: a client sends the same token on every request,
   * and the HMAC is the costliest part of authenticating one. Expiry and the key behind it are checked every time.
   */
  private readonly verifiedTokens = new Map<string, TokenClaims>();

  constructor(
    private readonly store: AccessStore,
    private readonly meta: MetadataStore,
    private readonly box: SecretBox,
    readonly options: AccessOptions,
    private readonly log: Logger,
  ) {}

  get enabled(): boolean {
    return this.options.enabled;
  }

  /** Encrypts a secret for storage. */
  seal(secret: string): string {
    return this.box.seal(secret);
  }

  /** A box sealing under a key of its own for `purpose`, derived from the server key (e.g. upstream credentials). */
  secretBox(purpose: string): SecretBox {
    return new SecretBox(this.box.derive(purpose));
  }

  /** Signs ECR pagination tokens (a key of its own, derived from the server key). */
  get paginationKey(): Buffer {
    return this.box.derive('berth pagination v1');
  }

  repositoryArn(name: string): string {
    return repositoryArn(this.options.region, this.options.accountId, name);
  }

  /** Drops cached authorization data when anything changed since it was read. */
  async refresh(): Promise<void> {
    const epoch = await this.store.epoch();
    if (epoch !== this.epoch) {
      this.keys.clear();
      this.policies.clear();
      this.repositories.clear();
      this.epoch = epoch;
    }
  }

  /** Tells other nodes (and this one) that access data changed. */
  async changed(): Promise<void> {
    await this.store.bumpEpoch();
    await this.refresh();
  }

  private async key(accessKeyId: string): Promise<KeyEntry | null> {
    if (this.keys.has(accessKeyId)) return this.keys.get(accessKeyId)!;
    const row = await this.store.findAccessKey(accessKeyId);
    const user = row ? await this.store.findUser(row.user_id) : null;
    const entry = row && user ? { secret: this.box.open(row.secret), active: row.status === 'Active', user: { id: user.id, name: user.name, admin: user.admin === 1 } } : null;
    this.keys.set(accessKeyId, entry);
    return entry;
  }

  private principalOf(entry: KeyEntry, accessKeyId: string): Principal {
    return { kind: 'user', userId: entry.user.id, name: entry.user.name, arn: userArn(this.options.accountId, entry.user.name), admin: entry.user.admin, accessKeyId };
  }

  /** Ensures an administrator exists: from configured root credentials, or generated into `<dataDir>/root-credentials`. */
  async bootstrap(root: { accessKeyId?: string; secretAccessKey?: string }, dataDir: string): Promise<void> {
    const now = Date.now();
    if (root.accessKeyId && root.secretAccessKey) {
      const existing = await this.store.findAccessKey(root.accessKeyId);
      if (existing && this.box.open(existing.secret) === root.secretAccessKey) return;
      await this.store.transaction(async (tx) => {
        let user = await tx.findUserByName('root');
        if (!user) {
          user = { id: newUserId(), name: 'root', admin: 1, created_at: now };
          await tx.createUser(user);
        }
        if (existing) await tx.deleteAccessKey(existing.id);
        await tx.createAccessKey({ id: root.accessKeyId!, user_id: user.id, secret: this.box.seal(root.secretAccessKey!), status: 'Active', created_at: now });
      });
      this.log.info({ accessKeyId: root.accessKeyId }, 'administrator credentials taken from the configuration');
      return;
    }
    if (!this.options.enabled) return;
    const admins = (await this.store.listUsers()).filter((u) => u.admin === 1);
    if (admins.length > 0) return;
    const accessKeyId = newAccessKeyId();
    const secret = newSecretAccessKey();
    try {
      await this.store.transaction(async (tx) => {
        const user = { id: newUserId(), name: 'root', admin: 1, created_at: now };
        await tx.createUser(user);
        await tx.createAccessKey({ id: accessKeyId, user_id: user.id, secret: this.box.seal(secret), status: 'Active', created_at: now });
      });
    } catch (err) {
      // Another node bootstrapped at the same moment: its administrator stands.
      if ((await this.store.findUserByName('root')) !== null) return;
      throw err;
    }
    const file = path.join(dataDir, 'root-credentials');
    await writeFile(file, `# Berth administrator credentials, generated ${new Date(now).toISOString()}\nAWS_ACCESS_KEY_ID=${accessKeyId}\nAWS_SECRET_ACCESS_KEY=${secret}\n`, { mode: 0o600 });
    this.log.warn({ file }, 'generated administrator credentials: read them from this file, then keep it safe');
  }

  /** Users with their access keys (never a secret) and identity policies, for administrators (users.ts). */
  listUsers(): Promise<UserList> {
    return describeUsers(this.store, this.options.accountId);
  }

  // ---- authentication

  async authenticateSigV4(req: SigV4Input): Promise<Principal> {
    await this.refresh();
    const { accessKeyId } = await verifySigV4(req, {
      service: 'ecr',
      regions: this.options.regions,
      lookup: async (id) => {
        const entry = await this.key(id);
        return entry && entry.active ? { secretAccessKey: entry.secret } : null;
      },
    });
    return this.principalOf((await this.key(accessKeyId))!, accessKeyId);
  }

  /**
   * Basic credentials on /v2: `AWS:<registry token>` or `<access key id>:<secret>`. No header: anonymous.
   * Wrong credentials are refused outright rather than downgraded to anonymous.
   */
  async authenticateBasic(header: string | undefined): Promise<Principal> {
    await this.refresh();
    if (!header) return ANONYMOUS;
    const m = /^Basic\s+([A-Za-z0-9+/=._-]+)\s*$/i.exec(header);
    if (!m) throw new BerthError('UNAUTHORIZED', 'use HTTP Basic authentication: user AWS with a token from aws ecr get-login-password, or an access key id and secret');
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new BerthError('CREDENTIALS_UNKNOWN', 'malformed Basic credentials');
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    if (user === 'AWS') {
      const claims = this.verifiedTokens.get(password) ?? verifyToken(this.box.tokenKey, password);
      if (!claims) throw new BerthError('CREDENTIALS_UNKNOWN', 'invalid registry token: log in again with aws ecr get-login-password');
      if (claims.expiresAt * 1000 <= Date.now()) {
        this.verifiedTokens.delete(password);
        throw new BerthError('TOKEN_EXPIRED');
      }
      if (!this.verifiedTokens.has(password)) {
        if (this.verifiedTokens.size >= TOKEN_CACHE_SIZE) this.verifiedTokens.clear();
        this.verifiedTokens.set(password, claims);
      }
      const entry = await this.key(claims.accessKeyId);
      if (!entry || !entry.active) throw new BerthError('CREDENTIALS_UNKNOWN', 'the access key behind this token was deleted or deactivated');
      return this.principalOf(entry, claims.accessKeyId);
    }
    const entry = await this.key(user);
    const given = Buffer.from(password);
    const expected = Buffer.from(entry?.secret ?? '');
    if (!entry || !entry.active || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new BerthError('CREDENTIALS_UNKNOWN', 'unknown access key or wrong secret');
    }
    return this.principalOf(entry, user);
  }

  /** The principal of an active access key (a console session's), or null when it was deleted or deactivated. */
  async principalForKey(accessKeyId: string): Promise<Principal | null> {
    await this.refresh();
    const entry = await this.key(accessKeyId);
    return entry && entry.active ? this.principalOf(entry, accessKeyId) : null;
  }

  /** A registry token for `docker login` (GetAuthorizationToken), valid for the configured lifetime. */
  issueToken(principal: Principal, now = Date.now()): { authorizationToken: string; expiresAt: number } {
    if (principal.kind !== 'user') throw new BerthError('UNAUTHORIZED');
    const expiresAt = Math.floor(now / 1000) + this.options.tokenTtlSeconds;
    const password = signToken(this.box.tokenKey, { accessKeyId: principal.accessKeyId, expiresAt });
    return { authorizationToken: Buffer.from(`AWS:${password}`).toString('base64'), expiresAt };
  }

  /** A token for GetDownloadUrlForLayer URLs: one blob of one repository, for one hour, on behalf of `principal`. */
  downloadToken(principal: Principal, repository: string, digest: string, now = Date.now()): string {
    return signClaims(this.box.derive('berth download v1'), {
      k: principal.kind === 'user' ? principal.accessKeyId : '', r: repository, d: digest, e: Math.floor(now / 1000) + 3600,
    });
  }

  /** The principal a download token stands for, when it is valid for exactly this blob. */
  async authenticateDownload(token: string, repository: string, digest: string): Promise<Principal> {
    await this.refresh();
    const c = verifyClaims(this.box.derive('berth download v1'), token);
    if (!c || c.r !== repository || c.d !== digest || typeof c.e !== 'number' || typeof c.k !== 'string') {
      throw new BerthError('CREDENTIALS_UNKNOWN', 'invalid download URL: get a new one with GetDownloadUrlForLayer');
    }
    if (c.e * 1000 <= Date.now()) throw new BerthError('TOKEN_EXPIRED', 'the download URL has expired: get a new one with GetDownloadUrlForLayer');
    if (!this.options.enabled) return ANONYMOUS;
    const entry = await this.key(c.k);
    if (!entry || !entry.active) throw new BerthError('CREDENTIALS_UNKNOWN', 'the access key behind this download URL was deleted or deactivated');
    return this.principalOf(entry, c.k);
  }

  // ---- authorization

  private async identityPolicies(userId: string): Promise<PolicyDocument[]> {
    let docs = this.policies.get(userId);
    if (!docs) {
      docs = [];
      for (const p of await this.store.listUserPolicies(userId)) {
        try {
          docs.push(parsePolicy(p.document, 'identity'));
        } catch (err) {
          this.log.error({ err, userId, policy: p.name }, 'stored identity policy is invalid; ignoring it');
        }
      }
      this.policies.set(userId, docs);
    }
    return docs;
  }

  private async repositoryAccess(name: string): Promise<RepositoryAccess> {
    let access = this.repositories.get(name);
    if (!access) {
      const repo = await this.meta.findRepository(name);
      let policy: PolicyDocument | null = null;
      if (repo?.policy) {
        try {
          policy = parsePolicy(repo.policy, 'resource');
        } catch (err) {
          this.log.error({ err, repository: name }, 'stored repository policy is invalid; ignoring it');
        }
      }
      access = { policy, tags: repo ? await this.meta.listRepositoryTags(repo.id) : {} };
      this.repositories.set(name, access);
    }
    return access;
  }

  /** Whether `principal` may perform `action` on repository `name` (or on `*` when name is null). */
  async isAllowed(principal: Principal, action: string, name: string | null, ctx: RequestContext = {}): Promise<boolean> {
    if (!this.options.enabled) return true;
    if (principal.kind === 'user' && principal.admin) return true;
    const repo = name === null ? { policy: null, tags: {} } : await this.repositoryAccess(name);
    const context: Record<string, string | string[] | undefined> = {
      'aws:sourceip': ctx.sourceIp,
      'aws:securetransport': ctx.secureTransport === undefined ? undefined : String(ctx.secureTransport),
      'aws:currenttime': new Date().toISOString(),
      'aws:epochtime': String(Math.floor(Date.now() / 1000)),
      'aws:requestedregion': this.options.region,
    };
    if (principal.kind === 'user') {
      context['aws:username'] = principal.name;
      context['aws:userid'] = principal.userId;
      context['aws:principalarn'] = principal.arn;
      context['aws:principalaccount'] = this.options.accountId;
      context['aws:principaltype'] = 'User';
    }
    for (const [k, v] of Object.entries(repo.tags)) {
      context[`ecr:resourcetag/${k.toLowerCase()}`] = v;
      context[`aws:resourcetag/${k.toLowerCase()}`] = v;
    }
    const decision = evaluate({
      action,
      resource: name === null ? '*' : this.repositoryArn(name),
      principal: { arn: principal.kind === 'user' ? principal.arn : null, account: this.options.accountId },
      identityPolicies: principal.kind === 'user' ? await this.identityPolicies(principal.userId) : [],
      resourcePolicy: repo.policy,
      context,
    });
    return decision === 'allow';
  }

  /** Throws UNAUTHORIZED (anonymous: log in) or DENIED (authenticated but not allowed). */
  async authorize(principal: Principal, action: string, name: string | null, ctx: RequestContext = {}): Promise<void> {
    if (await this.isAllowed(principal, action, name, ctx)) return;
    const resource = name === null ? '*' : this.repositoryArn(name);
    if (principal.kind === 'anonymous') {
      throw new BerthError('UNAUTHORIZED', `authentication required to perform ${action} on ${resource}`);
    }
    throw new BerthError('DENIED', `User: ${principal.arn} is not authorized to perform: ${action} on resource: ${resource} because no policy allows the ${action} action`);
  }
}
