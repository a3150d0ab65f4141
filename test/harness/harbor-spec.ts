// Harbor's REST API as its own description has it (harbor-api/swagger-v2.15.2.yaml): what a request to it may be
// and what an answer from it may be. The Harbor fixture records every exchange; the tests hold them to this.
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import formats from 'ajv-formats';
import { parse } from 'yaml';

/** One request to Harbor's API and its answer, as they went over the wire. */
export interface HarborExchange {
  method: string;
  /** Path and query, `/api/v2.0/...`. */
  url: string;
  requestHeaders: Record<string, string | string[] | undefined>;
  requestBody: string;
  status: number;
  responseHeaders: Record<string, string | undefined>;
  responseBody: string;
}

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'body' | 'formData';
  required?: boolean;
  type?: string;
  maximum?: number;
  schema?: Schema;
  $ref?: string;
}

interface Response {
  schema?: Schema;
  headers?: Record<string, { type: string }>;
  $ref?: string;
}

interface Operation {
  operationId: string;
  parameters?: Parameter[];
  produces?: string[];
  responses: Record<string, Response>;
}

type Schema = Record<string, unknown>;
type PathItem = Record<string, Operation> & { parameters?: Parameter[] };

interface Spec {
  basePath: string;
  produces: string[];
  paths: Record<string, PathItem>;
  parameters: Record<string, Parameter>;
  responses: Record<string, Response>;
  definitions: Record<string, Schema>;
}

const spec = parse(readFileSync(new URL('harbor-api/swagger-v2.15.2.yaml', import.meta.url), 'utf8')) as Spec;

/**
 * A swagger 2.0 schema as JSON Schema: references into the definitions, `x-nullable` as a null type, and objects
 * closed to properties they do not declare (Harbor's server writes only those; a fixture that invents a field, or
 * a client that sends one Harbor ignores, is caught).
 */
function asJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(asJsonSchema);
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, k === 'properties' ? mapValues(v, asJsonSchema) : asJsonSchema(v)]));
  if (typeof out.$ref === 'string') out.$ref = out.$ref.replace('#/definitions/', 'harbor#/definitions/');
  if (out['x-nullable'] === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  if (out.properties && out.additionalProperties === undefined && !out.allOf) out.additionalProperties = false;
  return out;
}

function mapValues(o: unknown, fn: (v: unknown) => unknown): unknown {
  return Object.fromEntries(Object.entries(o as Record<string, unknown>).map(([k, v]) => [k, fn(v)]));
}

const ajv = new Ajv({ strict: false, allErrors: true, logger: false });
// ajv-formats is CommonJS: its function is the default export's `default`.
formats.default(ajv);
for (const format of ['int', 'int8', 'int32', 'int64', 'uint64']) ajv.addFormat(format, { type: 'number', validate: Number.isInteger });
for (const format of ['float', 'float64']) ajv.addFormat(format, { type: 'number', validate: () => true });
ajv.addSchema({ $id: 'harbor', definitions: mapValues(spec.definitions, asJsonSchema) });
const validators = new Map<string, ValidateFunction>();

/** Problems of a value against a schema of the spec, each with its JSON path. */
function schemaProblems(schema: Schema, value: unknown): string[] {
  const key = JSON.stringify(schema);
  let validate = validators.get(key);
  if (!validate) validators.set(key, (validate = ajv.compile(asJsonSchema(schema) as Schema)));
  return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` "${e.params.additionalProperty}"` : ''}`);
}

const resolve = <T extends { $ref?: string }>(item: T, section: 'parameters' | 'responses'): T => (item.$ref ? (spec[section][item.$ref.replace(`#/${section}/`, '')] as unknown as T) : item);

/** Path templates as patterns, the most literal first: `/registries/ping` before `/registries/{id}`. */
const routes = Object.keys(spec.paths)
  .map((template) => {
    const names: string[] = [];
    const pattern = template.replace(/[.]/g, '\\.').replace(/\{([^}]+)\}/g, (_, name: string) => (names.push(name), '([^/]+)'));
    return { template, names, regex: new RegExp(`^${pattern}$`) };
  })
  .sort((a, b) => a.names.length - b.names.length);

function matchesType(type: string | undefined, value: string): boolean {
  if (type === 'integer') return /^-?\d+$/.test(value);
  if (type === 'boolean') return value === 'true' || value === 'false';
  return true;
}

const header = (headers: Record<string, string | string[] | undefined>, name: string) => {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
};
const mediaTypes = (value: string | undefined) =>
  (value ?? '')
    .split(',')
    .map((t) => t.split(';')[0].trim().toLowerCase())
    .filter(Boolean);

/** The operation an exchange is, as `METHOD template (operationId)`, or undefined when the API has none. */
export function harborOperation(ex: Pick<HarborExchange, 'method' | 'url'>): string | undefined {
  const found = operationOf(ex);
  return found && `${ex.method} ${found.template} (${found.operation.operationId})`;
}

function operationOf(ex: Pick<HarborExchange, 'method' | 'url'>) {
  const { pathname } = new URL(ex.url, 'http://harbor');
  if (!pathname.startsWith(`${spec.basePath}/`)) return undefined;
  const path = pathname.slice(spec.basePath.length);
  for (const route of routes) {
    const match = route.regex.exec(path);
    const item = match && spec.paths[route.template];
    const operation = item?.[ex.method.toLowerCase()];
    if (!item || !operation) continue;
    const params = [...(item.parameters ?? []), ...(operation.parameters ?? [])].map((p) => resolve(p, 'parameters'));
    return { template: route.template, operation, params, values: Object.fromEntries(route.names.map((n, i) => [n, decodeURIComponent(match[i + 1])])) };
  }
  return undefined;
}

/**
 * What in an exchange Harbor's API description does not allow: the path and method, the query, path and body
 * parameters and the media type asked for (the request); the status, body and headers (the answer). Harbor sends
 * every error through one handler whatever status an operation declares, so an undeclared 4xx or 5xx passes when
 * its body is Harbor's `Errors` document. Empty when the exchange is as Harbor describes it.
 */
export function harborSpecProblems(ex: HarborExchange): string[] {
  const found = operationOf(ex);
  const { searchParams } = new URL(ex.url, 'http://harbor');
  if (!found) return [`${ex.method} ${ex.url}: no such operation in Harbor's API`];
  const { operation, params, values } = found;
  const problems: string[] = [];
  const problem = (text: string) => problems.push(`${ex.method} ${ex.url} (${operation.operationId}): ${text}`);

  for (const p of params.filter((x) => x.in === 'path')) if (!matchesType(p.type, values[p.name] ?? '')) problem(`path parameter ${p.name} "${values[p.name]}" is not ${p.type}`);
  for (const name of new Set(searchParams.keys())) if (!params.some((p) => p.in === 'query' && p.name === name)) problem(`query parameter "${name}" is not in the API`);
  for (const p of params.filter((x) => x.in === 'query')) {
    const value = searchParams.get(p.name);
    if (value === null) {
      if (p.required) problem(`query parameter ${p.name} is required`);
    } else if (!matchesType(p.type, value) || (p.maximum !== undefined && Number(value) > p.maximum)) {
      problem(`query parameter ${p.name}=${value} is not ${p.type}${p.maximum !== undefined ? ` up to ${p.maximum}` : ''}`);
    }
  }
  const body = params.find((p) => p.in === 'body');
  if (!body && ex.requestBody) problem('sends a body the operation does not take');
  if (body && !ex.requestBody && body.required) problem(`the body "${body.name}" is required`);
  if (body?.schema && ex.requestBody) {
    if (!mediaTypes(header(ex.requestHeaders, 'content-type')).includes('application/json')) problem('sends its body without content-type application/json');
    const parsed = parseJson(ex.requestBody);
    if (parsed === undefined) problem('sends a body that is not JSON');
    else for (const p of schemaProblems(body.schema, parsed)) problem(`request body ${p}`);
  }
  const produces = operation.produces ?? spec.produces;
  const accepted = mediaTypes(header(ex.requestHeaders, 'accept'));
  if (accepted.length && !accepted.some((t) => t === '*/*' || produces.includes(t))) problem(`asks for ${accepted.join(', ')}; the operation produces ${produces.join(', ')}`);

  const declared = operation.responses[String(ex.status)];
  const response = declared ? resolve(declared, 'responses') : ex.status >= 400 ? { schema: { $ref: '#/definitions/Errors' } } : undefined;
  if (!response) return [...problems, `${ex.method} ${ex.url} (${operation.operationId}): answers ${ex.status}, which the operation does not declare`];
  const contentType = mediaTypes(ex.responseHeaders['content-type'])[0];
  if (ex.method === 'HEAD' || !response.schema) {
    if (ex.responseBody) problem(`answers ${ex.status} with a body the API does not describe`);
  } else if (response.schema.type === 'string' && produces.includes('text/plain')) {
    if (contentType !== 'text/plain') problem(`answers ${ex.status} as ${contentType}, not text/plain`);
  } else {
    const parsed = parseJson(ex.responseBody);
    if (contentType !== 'application/json') problem(`answers ${ex.status} as ${contentType ?? 'no content type'}, not application/json`);
    if (parsed === undefined) problem(`answers ${ex.status} with a body that is not JSON`);
    else for (const p of schemaProblems(response.schema, parsed)) problem(`answer ${ex.status} ${p}`);
  }
  for (const [name, { type }] of Object.entries(response.headers ?? {})) {
    const value = ex.responseHeaders[name.toLowerCase()];
    if (name === 'Location' && !value) problem(`answers ${ex.status} without a Location header`);
    if (value !== undefined && !matchesType(type, value)) problem(`header ${name}: ${value} is not ${type}`);
  }
  return problems;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
