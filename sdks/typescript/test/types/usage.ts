// Compiled (never run) by `npm test`: a partner's TypeScript sees the documented fields with
// their types, and a typo is an error.
import {
  OytelClient,
  ValidationError,
  type Esim,
  type ProvisionedOrder,
  type WebhookEvent,
} from "../../dist/esm/index.js";

export async function partnerCode(client: OytelClient): Promise<string> {
  const order: ProvisionedOrder = await client.orders.create({
    planSlug: "eu-roam-50",
    termMonths: 1,
    customerEmail: "customer@example.com",
    customerName: "John Doe",
  });
  const id: string = order.esimId;
  const cents: number = order.billing.costCents;
  const esim: Esim = await client.esims.get(id);
  const url: string = esim.qrCodeUrl;
  const used: number = esim.usage.dataUsedMb;
  const monthly: number = (await client.plans.get("eu-roam-50")).pricing["1_month"];
  for await (const e of client.esims.list({ status: "active" })) {
    const state: "provisioned" | "active" | "suspended" | "expired" | "cancelled" = e.status;
    void state;
  }
  const event = client.webhooks.verify<WebhookEvent>("{}", {}, "whsec_x");
  const threshold: number | null | undefined = event.data.thresholdPercent;
  // @ts-expect-error: the wire's snake_case is not the SDK's
  void esim.qr_code_url;
  try {
    await client.esims.buyTopup(id, { topupId: "eu-boost-5" });
  } catch (e) {
    if (e instanceof ValidationError) return e.field ?? e.code;
  }
  return `${url} ${cents} ${used} ${monthly} ${threshold}`;
}
