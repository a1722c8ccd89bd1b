/** Input building blocks with the API model's constraints, and the model's constraint messages. */
import { z } from 'zod/v3';

// The newer (OCI) grammar of the ECR model, matched against the whole string.
const REPOSITORY_NAME = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
const REPOSITORY_NAME_TEXT = '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*';

export const registryId = z.string().regex(/^[0-9]{12}$/, "must satisfy regular expression '[0-9]{12}'").optional().nullable();

export const repositoryName = z.string()
  .min(2, 'Member must have length greater than or equal to 2')
  .max(256, 'Member must have length less than or equal to 256')
  .regex(REPOSITORY_NAME, `must satisfy regular expression '${REPOSITORY_NAME_TEXT}'`);

export const maxResults = (max = 1000) => z.number().int()
  .min(1, 'Member must have value greater than or equal to 1')
  .max(max, `Member must have value less than or equal to ${max}`)
  .optional().nullable();

export const nextToken = z.string().optional().nullable();

export const imageTag = z.string().min(1, 'Member must have length greater than or equal to 1').max(300, 'Member must have length less than or equal to 300');

export const imageIdentifier = z.object({
  imageDigest: z.string().optional().nullable(),
  imageTag: imageTag.optional().nullable(),
});

export const imageIds = z.array(imageIdentifier)
  .min(1, 'Member must have length greater than or equal to 1')
  .max(100, 'Member must have length less than or equal to 100');

export const tagMutability = z.enum(['MUTABLE', 'IMMUTABLE', 'IMMUTABLE_WITH_EXCLUSION', 'MUTABLE_WITH_EXCLUSION'], {
  message: "Member must satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]",
});

export const exclusionFilters = z.array(z.object({
  filterType: z.literal('WILDCARD', { message: 'Member must satisfy enum value set: [WILDCARD]' }),
  filter: z.string().regex(/^[0-9a-zA-Z._*-]{1,128}$/, "must satisfy regular expression '^[0-9a-zA-Z._*-]{1,128}$'"),
})).min(1, 'Member must have length greater than or equal to 1').max(5, 'Member must have length less than or equal to 5');

export const resourceTags = z.array(z.object({
  Key: z.string(),
  Value: z.string(),
}));

export function constraintMessage(err: z.ZodError): string {
  const issue = err.issues[0];
  const member = issue.path.length ? issue.path.map(String).join('.') : 'input';
  if (issue.code === 'invalid_type' && issue.received === 'undefined') {
    return `1 validation error detected: Value null at '${member}' failed to satisfy constraint: Member must not be null`;
  }
  return `Invalid parameter at '${member}' failed to satisfy constraint: '${issue.message}'`;
}
