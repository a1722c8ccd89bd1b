/**
 * `berth admin …`: manage users, access keys and identity policies directly in the metadata database (the server
 * picks up every change on its next request through the access epoch). Output is JSON, like the AWS CLI's.
 */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { createAccessService } from '../app.ts';
import { storeOptions, withStores } from './stores.ts';
import { newAccessKeyId, newSecretAccessKey, newUserId, USER_NAME, userArn } from '../auth/identity.ts';
import { parsePolicy, PolicyError } from '../auth/policy.ts';
import { createLogger } from '../logger.ts';
import type { AccessStore } from '../metadata/access-store.ts';
import { CliError } from './errors.ts';
import { registerPullThroughAdminCommands } from './pull-through.ts';
import { registerWebhookAdminCommands } from './webhook.ts';


interface Common {
  config?: string;
  dataDir?: string;
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Opens the stores for one command and closes them after, whatever happens. */
async function withAccess<T>(opts: Common, fn: (ctx: { store: AccessStore; seal(s: string): string; account: string }) => Promise<T>): Promise<T> {
  return withStores(opts, async (stores, config) => {
    const access = await createAccessService(config, stores, createLogger({ log: { level: 'warn' } }));
    return fn({ store: stores.accessStore, seal: (s) => access.seal(s), account: config.ecr.accountId });
  });
}

async function userByName(store: AccessStore, name: string) {
  const user = await store.findUserByName(name);
  if (!user) throw new CliError(`no user named "${name}": list them with \`berth admin user list\``);
  return user;
}

const common = storeOptions;

export function registerAdminCommands(program: Command): void {
  const admin = program.command('admin').description('manage users, access keys, policies, upstream secrets, pull-through rules and webhooks');

  const user = admin.command('user').description('IAM-style users');
  common(user.command('create').argument('<name>').option('--admin', 'may do everything, like the root user')
    .description('create a user')).action(async (name: string, opts: Common & { admin?: boolean }) => {
    if (!USER_NAME.test(name)) throw new CliError(`invalid user name "${name}": 1–64 letters, digits and +=,.@_-`);
    await withAccess(opts, async ({ store, account }) => {
      if (await store.findUserByName(name)) throw new CliError(`user "${name}" already exists`);
      const row = { id: newUserId(), name, admin: opts.admin ? 1 : 0, created_at: Date.now() };
      await store.createUser(row);
      print({ User: { UserName: name, UserId: row.id, Arn: userArn(account, name), Admin: Boolean(opts.admin), CreateDate: new Date(row.created_at).toISOString() } });
    });
  });
  common(user.command('list').description('list users')).action(async (opts: Common) => {
    await withAccess(opts, async ({ store, account }) => {
      const users = await store.listUsers();
      print({ Users: users.map((u) => ({ UserName: u.name, UserId: u.id, Arn: userArn(account, u.name), Admin: u.admin === 1, CreateDate: new Date(u.created_at).toISOString() })) });
    });
  });
  common(user.command('delete').argument('<name>').description('delete a user with its keys and policies')).action(async (name: string, opts: Common) => {
    await withAccess(opts, async ({ store }) => {
      const u = await userByName(store, name);
      await store.transaction(async (tx) => {
        for (const k of await tx.listAccessKeys(u.id)) await tx.deleteAccessKey(k.id);
        await tx.deleteUser(u.id);
      });
      print({ Deleted: name });
    });
  });

  const key = admin.command('key').description('access keys (SigV4 credentials; also Basic credentials on /v2)');
  common(key.command('create').argument('<user>').description('create an access key; the secret is shown only now')).action(async (name: string, opts: Common) => {
    await withAccess(opts, async ({ store, seal }) => {
      const u = await userByName(store, name);
      const id = newAccessKeyId();
      const secret = newSecretAccessKey();
      await store.createAccessKey({ id, user_id: u.id, secret: seal(secret), status: 'Active', created_at: Date.now() });
      print({ AccessKey: { UserName: name, AccessKeyId: id, SecretAccessKey: secret, Status: 'Active' } });
    });
  });
  common(key.command('list').argument('<user>').description("list a user's access keys")).action(async (name: string, opts: Common) => {
    await withAccess(opts, async ({ store }) => {
      const u = await userByName(store, name);
      const keys = await store.listAccessKeys(u.id);
      print({ AccessKeyMetadata: keys.map((k) => ({ UserName: name, AccessKeyId: k.id, Status: k.status, CreateDate: new Date(k.created_at).toISOString() })) });
    });
  });
  for (const [verb, status] of [['activate', 'Active'], ['deactivate', 'Inactive']] as const) {
    common(key.command(verb).argument('<access-key-id>').description(`${verb} an access key`)).action(async (id: string, opts: Common) => {
      await withAccess(opts, async ({ store }) => {
        if (!(await store.setAccessKeyStatus(id, status))) throw new CliError(`no access key ${id}`);
        print({ AccessKeyId: id, Status: status });
      });
    });
  }
  common(key.command('delete').argument('<access-key-id>').description('delete an access key (tokens minted with it stop working)')).action(async (id: string, opts: Common) => {
    await withAccess(opts, async ({ store }) => {
      if (!(await store.deleteAccessKey(id))) throw new CliError(`no access key ${id}`);
      print({ Deleted: id });
    });
  });

  const policy = admin.command('policy').description("a user's identity policies");
  common(policy.command('attach').argument('<user>').argument('<policy-name>').requiredOption('-f, --file <file>', 'the policy document (JSON)')
    .description('attach (or replace) a named identity policy')).action(async (name: string, policyName: string, opts: Common & { file: string }) => {
    const text = await readFile(opts.file, 'utf8').catch((err: Error) => { throw new CliError(`cannot read ${opts.file}: ${err.message}`); });
    try {
      parsePolicy(text, 'identity');
    } catch (err) {
      if (err instanceof PolicyError) throw new CliError(`invalid policy in ${opts.file}: ${err.message}`);
      throw err;
    }
    await withAccess(opts, async ({ store }) => {
      const u = await userByName(store, name);
      await store.putUserPolicy(u.id, policyName, text);
      print({ UserName: name, PolicyName: policyName });
    });
  });
  common(policy.command('detach').argument('<user>').argument('<policy-name>').description('remove a named identity policy')).action(async (name: string, policyName: string, opts: Common) => {
    await withAccess(opts, async ({ store }) => {
      const u = await userByName(store, name);
      if (!(await store.deleteUserPolicy(u.id, policyName))) throw new CliError(`user "${name}" has no policy "${policyName}"`);
      print({ UserName: name, Detached: policyName });
    });
  });
  common(policy.command('list').argument('<user>').description("list a user's policies with their documents")).action(async (name: string, opts: Common) => {
    await withAccess(opts, async ({ store }) => {
      const u = await userByName(store, name);
      const docs = await store.listUserPolicies(u.id);
      print({ Policies: docs.map((d) => ({ PolicyName: d.name, PolicyDocument: JSON.parse(d.document) as unknown })) });
    });
  });

  registerPullThroughAdminCommands(admin, common);
  registerWebhookAdminCommands(admin, common);
}
