/** Server-side QR codes as SVG (no third-party requests from the page). */
import QRCode from 'qrcode';

/** An SVG QR code of `text` (error correction M, 4-module quiet zone, black on white). */
export async function qrSvg(text: string): Promise<string> {
  return QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 4, color: { dark: '#000000', light: '#ffffff' } });
}

/** The same QR code as a `data:` URI for an <img> (allowed by the page's img-src). */
export async function qrDataUri(text: string): Promise<string> {
  return `data:image/svg+xml;base64,${Buffer.from(await qrSvg(text)).toString('base64')}`;
}
