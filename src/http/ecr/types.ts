/** The shape of one ECR operation: its name, input schema, the permission it needs, and its handler. */
import type { z } from 'zod/v3';
import type { Logger } from 'pino';
import type { AccessService, Principal, RequestContext } from '../../auth/service.ts';
import type { MetadataStore } from '../../metadata/store.ts';
import type { RegistryService } from '../../registry/service.ts';
import type { EcrDomain } from '../../registry/ecr.ts';
import type { LifecycleService } from '../../lifecycle/service.ts';
import type { ScanService } from '../../scan/service.ts';

export interface EcrContext {
  principal: Principal;
  access: AccessService;
  registry: RegistryService;
  meta: MetadataStore;
  ecr: EcrDomain;
  lifecycle: LifecycleService;
  scans: ScanService;
  /** host[:port] for repositoryUri/proxyEndpoint: configured, or the request's Host. */
  registryHost: string;
  /** `https` or `http`, for proxyEndpoint and download URLs. */
  scheme: string;
  request: RequestContext;
  log: Logger;
}

export interface EcrAction<S extends z.ZodType = z.ZodType> {
  name: string;
  input: S;
  /**
   * The repository the operation's permission (`ecr:<name>`) applies to, or null for `*`. Operations that decide
   * per item (DescribeRepositories without names) set `authorizeInHandler` instead.
   */
  resource?: (input: z.infer<S>) => string | null;
  authorizeInHandler?: boolean;
  handle(input: z.infer<S>, ctx: EcrContext): Promise<Record<string, unknown>>;
}

export function defineAction<S extends z.ZodType>(action: EcrAction<S>): EcrAction<S> {
  return action;
}
