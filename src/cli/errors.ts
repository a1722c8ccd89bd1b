/** An error in how a command was used or what it was asked to do: printed as one line, exit status 2. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}
