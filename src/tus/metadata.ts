import { MalformedUploadError } from '../base/errors.js';

/** The most metadata entries an upload may declare. @internal */
export const MAX_METADATA_ENTRIES = 32;
/** The longest metadata key, in characters. @internal */
export const MAX_METADATA_KEY = 64;
/** The longest metadata value, in bytes of UTF-8 (a file name is at most 255). @internal */
export const MAX_METADATA_VALUE_BYTES = 1024;
const MAX_FILENAME_BYTES = 255;
const MAX_TYPE_LENGTH = 127;

const KEY = /^[A-Za-z0-9_.-]+$/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const FILE_NAME_KEYS = new Set(['filename', 'name']);
const TYPE_KEYS = new Set(['filetype', 'type']);
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$/;

/**
 * Checks an upload's `Upload-Metadata` as the client's: hostile input. Every value is at most
 * 1 KiB and holds no control character (NUL, CR, LF, ...); a file name (`filename`, `name`) is at
 * most 255 bytes, not `.` or `..`, and holds no path separator; a type (`filetype`, `type`) is a
 * media type. Throws {@link MalformedUploadError} (400) naming the key and showing the value.
 */
export function checkMetadata(metadata: Readonly<Record<string, string | null>> | undefined): void {
  if (metadata === undefined) return;
  const entries = Object.entries(metadata);
  if (entries.length > MAX_METADATA_ENTRIES) {
    throw refuse('Upload-Metadata', `declares ${entries.length} entries; at most ${MAX_METADATA_ENTRIES} are taken`);
  }
  for (const [key, value] of entries) {
    if (key.length > MAX_METADATA_KEY || !KEY.test(key)) throw refuse(key, `is not a metadata key taken (1 to ${MAX_METADATA_KEY} of A-Z a-z 0-9 _ . -): ${show(key)}`);
    if (value !== null) checkValue(key, value);
  }
}

function checkValue(key: string, value: string): void {
  if (Buffer.byteLength(value) > MAX_METADATA_VALUE_BYTES) throw refuse(key, `is longer than ${MAX_METADATA_VALUE_BYTES} bytes: ${show(value)}`);
  if (CONTROL.test(value)) throw refuse(key, `holds a control character (NUL, CR, LF, ...): ${show(value)}; send the value without it`);
  if (FILE_NAME_KEYS.has(key)) checkFileName(key, value);
  if (TYPE_KEYS.has(key) && value !== '' && (value.length > MAX_TYPE_LENGTH || !MEDIA_TYPE.test(value))) {
    throw refuse(key, `is not a media type such as image/png: ${show(value)}`);
  }
}

function checkFileName(key: string, value: string): void {
  if (Buffer.byteLength(value) > MAX_FILENAME_BYTES) throw refuse(key, `is longer than ${MAX_FILENAME_BYTES} bytes: ${show(value)}`);
  if (/[/\\]/.test(value)) throw refuse(key, `holds a path separator: ${show(value)}; send the file's base name alone`);
  if (value === '.' || value === '..') throw refuse(key, `is ${show(value)}, not a file name`);
}

function refuse(field: string, what: string): MalformedUploadError {
  return new MalformedUploadError('malformed', `Upload-Metadata's ${field} ${what}.`, { field });
}

/** The value as JSON (control characters escaped), cut to 60 characters. */
function show(value: string): string {
  const json = JSON.stringify(value);
  return json.length > 60 ? `${json.slice(0, 57)}..."` : json;
}
