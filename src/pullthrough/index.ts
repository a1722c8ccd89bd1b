/**
 * The pull-through cache's management plane, assembled over one database: the store, the upstream secrets, the rules
 * and the repository creation templates. The composition root (app.ts) and `berth admin` build it the same way.
 */
import type { Kysely } from 'kysely';
import type { AccessService } from '../auth/service.ts';
import type { Database } from '../metadata/schema.ts';
import type { EncryptionCheck } from '../registry/ecr.ts';
import { defaultProbe } from './probe.ts';
import { PullThroughRules, type UpstreamProbe } from './rules.ts';
import { UPSTREAM_SECRET_PURPOSE, UpstreamSecrets } from './secrets.ts';
import { PullThroughStore } from './store.ts';
import { RepositoryCreationTemplates } from './templates.ts';

export interface PullThrough {
  store: PullThroughStore;
  secrets: UpstreamSecrets;
  rules: PullThroughRules;
  templates: RepositoryCreationTemplates;
}

export function createPullThrough(options: {
  db: Kysely<Database>;
  access: Pick<AccessService, 'secretBox'>;
  identity: { accountId: string; region: string };
  checkEncryption?: EncryptionCheck;
  probe?: UpstreamProbe;
  /** Transparent mirrors named by configuration: upstream host → rule prefix (see `PullThroughRules`). */
  mirrors?: Record<string, string>;
}): PullThrough {
  const store = new PullThroughStore(options.db);
  const secrets = new UpstreamSecrets(store, options.access.secretBox(UPSTREAM_SECRET_PURPOSE), options.identity);
  return {
    store,
    secrets,
    rules: new PullThroughRules(store, secrets, options.identity, options.probe ?? defaultProbe, options.mirrors),
    templates: new RepositoryCreationTemplates(store, options.identity.accountId, options.checkEncryption),
  };
}
