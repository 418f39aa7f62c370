import { z } from 'zod';
import { ID_PATTERN } from '../../broker/contract/index.js';

/**
 * A site as the hub's operator registers it: where the building is, which
 * district's fire department answers for it, and what the firefighters should
 * know before they arrive. Declared once; the type, the store, the CLI, the
 * importer and the API all use it.
 *
 * Address, contacts, occupancy and hazards are private: fire departments of the
 * site's district and admins see them, residents never do.
 */
const Id = z.string().regex(ID_PATTERN, 'must be 1-64 letters, digits, "_", "." or "-" (it is a topic level)');
/** Text a person typed: bounded, no control characters (it ends up in CAP messages, logs and pages). */
const Text = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    // eslint-disable-next-line no-control-regex
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters');

export const Contact = z
  .object({
    name: Text(100),
    role: Text(100).optional(),
    phone: z
      .string()
      .trim()
      .regex(/^\+?[0-9 ()./-]{3,32}$/, 'must be a phone number (digits, spaces, + ( ) . / -)')
      .optional(),
    email: z.email().max(200).optional(),
  })
  .strict();
export type Contact = z.infer<typeof Contact>;

export const Site = z
  .object({
    id: Id.describe("The site id the gateways use (gateway.site in their config)"),
    name: Text(200).describe('What the fire department calls it: "Bakery Müller"'),
    address: Text(300).describe('Street address, as a fire engine would drive to it'),
    location: z
      .object({
        lat: z.number().min(-90).max(90).describe('WGS 84 latitude, degrees'),
        lon: z.number().min(-180).max(180).describe('WGS 84 longitude, degrees'),
      })
      .strict(),
    district: Id.describe('The district whose fire department answers for the site'),
    occupancy: Text(200).optional().describe('What the building is used for: "bakery, flat above"'),
    hazards: z.array(Text(200)).max(50).default([]).describe('What firefighters must know: "LPG tank in the yard"'),
    contacts: z.array(Contact).max(20).default([]).describe('Who to call (for fire departments only)'),
    notes: Text(1000).optional(),
  })
  .strict();
export type Site = z.infer<typeof Site>;
export type SiteInput = z.input<typeof Site>;

/** Every problem of a site record, as `field: why`. */
export function siteProblems(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.join('.') || '(site)'}: ${i.message}`);
}
