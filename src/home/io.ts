/**
 * What the ~/Private and encrypted-home tools need from their command line: where their messages
 * go and how a secret is asked. The commands (cli/) give the terminal's; the logic here never
 * touches the terminal itself.
 */
export interface ToolIO {
  /** A line of the tool's ordinary output (stdout). */
  out(text: string): void;
  /** An error or notice (stderr). */
  err(text: string): void;
  /** One secret: from `file` when given, else the terminal without echo, else the next line of stdin. */
  secret(prompt: string, file?: string): Promise<Buffer>;
  /** Whether a person can be asked again (stdin is a terminal). */
  interactive(): boolean;
}
