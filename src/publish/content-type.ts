import mime from 'mime'

export const BINARY = 'application/octet-stream'

/**
 * Content-Type for a file: the override when given, else the MIME database's type for the
 * extension. Model formats the database does not know (.onnx, .safetensors, .gguf, .pt,
 * .ckpt…) get application/octet-stream, never an error.
 */
export function contentTypeFor(relativePath: string, override?: string): string {
  if (override) return override
  const type = mime.getType(relativePath)
  if (!type) return BINARY
  // Tokenizer vocabularies and model cards are UTF-8; say so rather than let clients guess.
  return type.startsWith('text/') ? `${type}; charset=utf-8` : type
}
