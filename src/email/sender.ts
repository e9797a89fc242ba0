/** SMTP sending through nodemailer. Off (null) when SMTP_URL is not configured. */
import nodemailer from 'nodemailer';

export interface OutgoingEmail {
  to: string;
  subject: string;
  text: string;
  html: string;
  /** Message-ID-ish idempotency hint for receivers (our e-mail id). */
  id: string;
}

export interface EmailSender {
  send(msg: OutgoingEmail): Promise<void>;
  close(): void;
}

export function createSmtpSender(opts: { smtpUrl: string; from: string }): EmailSender {
  const transport = nodemailer.createTransport(opts.smtpUrl);
  return {
    async send(msg) {
      await transport.sendMail({
        from: opts.from, to: msg.to, subject: msg.subject, text: msg.text, html: msg.html,
        headers: { 'X-Kassa-Email-Id': msg.id },
      });
    },
    close() {
      transport.close();
    },
  };
}
