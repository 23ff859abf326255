// Every string the operations console shows a person (dashboard, alerts, maintenance report), in
// English and Arabic. Same conventions as the technician CLI (host/cli/messages.ts): placeholders
// are `{name}`, numbers arrive already formatted in Western digits so values read the same in both
// languages. Pure data and one function: bundled into the browser page and used by Node alike.

export type Lang = "en" | "ar";
export const LANGS: readonly Lang[] = ["en", "ar"];

export function parseLang(value: string | null | undefined): Lang | null {
  return value === "en" || value === "ar" ? value : null;
}

export function dirOf(lang: Lang): "ltr" | "rtl" {
  return lang === "ar" ? "rtl" : "ltr";
}

const MESSAGES = {
  // --- page ---------------------------------------------------------------------------------
  "page.title": { en: "pollkit operations", ar: "عمليات pollkit" },
  "page.language": { en: "Language", ar: "اللغة" },
  "page.live": { en: "live", ar: "مباشر" },
  "page.offline": { en: "reconnecting…", ar: "جارٍ إعادة الاتصال…" },
  "page.updated": { en: "updated {time}", ar: "آخر تحديث {time}" },
  "nav.fleet": { en: "Fleet", ar: "الأجهزة" },
  "nav.alerts": { en: "Alerts", ar: "التنبيهات" },
  "nav.status": { en: "Operational status", ar: "الحالة التشغيلية" },
  "nav.quarantine": { en: "Quarantine", ar: "الحجر" },
  "nav.turnout": { en: "Turnout and results", ar: "الإقبال والنتائج" },

  // --- fleet --------------------------------------------------------------------------------
  "fleet.heading": { en: "Fleet", ar: "أسطول الأجهزة" },
  "fleet.count": { en: "{shown} of {total} devices (page {page} of {pages})", ar: "{shown} من {total} جهاز (الصفحة {page} من {pages})" },
  "fleet.empty": { en: "no devices match these filters", ar: "لا توجد أجهزة تطابق هذه المرشحات" },
  "fleet.prev": { en: "previous", ar: "السابق" },
  "fleet.next": { en: "next", ar: "التالي" },
  "fleet.exportCsv": { en: "export CSV", ar: "تصدير CSV" },
  "filter.governorate": { en: "Governorate", ar: "المحافظة" },
  "filter.office": { en: "Office", ar: "المكتب" },
  "filter.status": { en: "Status", ar: "الحالة" },
  "filter.all": { en: "all", ar: "الكل" },
  "filter.search": { en: "Device", ar: "الجهاز" },

  "col.device": { en: "device", ar: "الجهاز" },
  "col.site": { en: "site", ar: "الموقع" },
  "col.governorate": { en: "governorate", ar: "المحافظة" },
  "col.office": { en: "office", ar: "المكتب" },
  "col.station": { en: "station", ar: "المركز" },
  "col.role": { en: "role", ar: "الدور" },
  "col.battery": { en: "battery", ar: "البطارية" },
  "col.charge": { en: "charge", ar: "الشحن" },
  "col.mode": { en: "charge mode", ar: "وضع الشحن" },
  "col.lastSeen": { en: "last seen", ar: "آخر ظهور" },
  "col.faults": { en: "faults", ar: "الأعطال" },
  "col.online": { en: "online", ar: "متصل" },
  "col.status": { en: "status", ar: "الحالة" },
  "col.firmware": { en: "firmware", ar: "البرنامج الثابت" },
  "col.records": { en: "records", ar: "السجلات" },
  "col.devices": { en: "devices", ar: "الأجهزة" },
  "col.severity": { en: "severity", ar: "الخطورة" },
  "col.alert": { en: "alert", ar: "التنبيه" },
  "col.since": { en: "since", ar: "منذ" },
  "col.reason": { en: "reason", ar: "السبب" },
  "col.count": { en: "count", ar: "العدد" },
  "col.received": { en: "received", ar: "وقت الاستلام" },
  "col.topic": { en: "topic", ar: "الموضوع" },
  "col.detail": { en: "detail", ar: "التفاصيل" },
  "col.total": { en: "total", ar: "المجموع" },
  "col.allOffices": { en: "all offices", ar: "كل المكاتب" },

  "status.ready": { en: "ready", ar: "جاهز" },
  "status.charging": { en: "charging", ar: "قيد الشحن" },
  "status.faulty": { en: "faulty", ar: "معطّل" },
  "status.silent": { en: "silent", ar: "صامت" },
  "yes": { en: "yes", ar: "نعم" },
  "no": { en: "no", ar: "لا" },
  "never": { en: "never", ar: "أبداً" },
  "none": { en: "none", ar: "لا شيء" },

  "role.verification": { en: "verification (VVD)", ar: "التحقق (VVD)" },
  "role.result": { en: "result (RAD)", ar: "النتائج (RAD)" },
  "role.unknown": { en: "unknown", ar: "غير معروف" },

  "charge.0": { en: "unknown", ar: "غير معروف" },
  "charge.1": { en: "not charging", ar: "لا يشحن" },
  "charge.2": { en: "pre-charge", ar: "شحن أولي" },
  "charge.3": { en: "fast charge", ar: "شحن سريع" },
  "charge.4": { en: "charged", ar: "مشحون" },
  "charge.5": { en: "no battery", ar: "لا توجد بطارية" },
  "mode.0": { en: "unspecified", ar: "غير محدد" },
  "mode.1": { en: "normal", ar: "عادي" },
  "mode.2": { en: "storage", ar: "تخزين" },
  "mode.3": { en: "maintain", ar: "صيانة" },

  "peripheral.1": { en: "secure element", ar: "العنصر الآمن" },
  "peripheral.2": { en: "flash", ar: "الذاكرة الوميضية" },
  "peripheral.3": { en: "charger", ar: "الشاحن" },
  "peripheral.4": { en: "fuel gauge", ar: "مقياس البطارية" },
  "peripheral.5": { en: "fingerprint sensor", ar: "مستشعر البصمة" },
  "peripheral.6": { en: "card reader", ar: "قارئ البطاقات" },
  "peripheral.7": { en: "printer", ar: "الطابعة" },
  "peripheral.8": { en: "ballot feed", ar: "مغذّي الأوراق" },
  "peripheral.9": { en: "display", ar: "الشاشة" },

  // --- device detail ------------------------------------------------------------------------
  "detail.heading": { en: "Device {id}", ar: "الجهاز {id}" },
  "detail.close": { en: "close", ar: "إغلاق" },
  "detail.history": { en: "Health history", ar: "السجل الصحي" },
  "detail.noHistory": { en: "no health reports received", ar: "لم تصل أي تقارير صحية" },
  "detail.batteryMv": { en: "battery (mV)", ar: "البطارية (ملي فولت)" },
  "detail.soc": { en: "state of charge (%)", ar: "نسبة الشحن (%)" },
  "detail.alerts": { en: "Alerts for this device", ar: "تنبيهات هذا الجهاز" },
  "detail.temperature": { en: "temperature", ar: "درجة الحرارة" },
  "detail.backlog": { en: "journal backlog", ar: "السجلات غير المؤكدة" },

  // --- alerts -------------------------------------------------------------------------------
  "alerts.heading": { en: "Alerts", ar: "التنبيهات" },
  "alerts.none": { en: "no alerts", ar: "لا توجد تنبيهات" },
  "alerts.count": { en: "{count} alerts ({critical} critical, {warning} warnings)", ar: "{count} تنبيه ({critical} حرج، {warning} تحذير)" },
  "severity.critical": { en: "critical", ar: "حرج" },
  "severity.warning": { en: "warning", ar: "تحذير" },
  "severity.info": { en: "info", ar: "معلومة" },
  "alert.batteryLow": {
    en: "battery low: {soc} % (below {threshold} %)",
    ar: "البطارية منخفضة: {soc} % (أقل من {threshold} %)",
  },
  "alert.storageWindow": {
    en: "in storage mode but charge is {soc} %, outside {low}–{high} %",
    ar: "في وضع التخزين لكن نسبة الشحن {soc} %، خارج النطاق {low}–{high} %",
  },
  "alert.silent": {
    en: "silent for {minutes} min (expected a report every {interval} min)",
    ar: "صامت منذ {minutes} دقيقة (يُتوقع تقرير كل {interval} دقيقة)",
  },
  "alert.neverSeen": { en: "never reported", ar: "لم يرسل أي تقرير" },
  "alert.chargerFault": { en: "charger fault (code {faults})", ar: "عطل في الشاحن (الرمز {faults})" },
  "alert.backlogHigh": {
    en: "journal backlog {backlog} records (limit {threshold})",
    ar: "{backlog} سجل غير مؤكد في السجل (الحد {threshold})",
  },
  "alert.backlogRising": {
    en: "journal backlog rising: {from} → {to} records",
    ar: "السجلات غير المؤكدة في ازدياد: {from} ← {to}",
  },
  "alert.peripheralFault": { en: "part failed: {parts}", ar: "تعطّل مكوّن: {parts}" },

  // --- status -------------------------------------------------------------------------------
  "statusTable.heading": { en: "Cumulative operational status", ar: "الحالة التشغيلية التراكمية" },
  "statusTable.note": { en: "per governorate and office; silent devices are counted once, as silent", ar: "حسب المحافظة والمكتب؛ يُحسب الجهاز الصامت مرة واحدة كصامت" },

  // --- quarantine ---------------------------------------------------------------------------
  "quarantine.heading": { en: "Quarantined messages", ar: "الرسائل المحجوزة" },
  "quarantine.none": { en: "nothing quarantined", ar: "لا توجد رسائل محجوزة" },
  "quarantine.latest": { en: "latest", ar: "الأحدث" },

  // --- turnout ------------------------------------------------------------------------------
  "turnout.heading": { en: "Turnout, results and reconciliation", ar: "الإقبال والنتائج والمطابقة" },
  "turnout.none": { en: "no turnout or results reported yet", ar: "لم يُبلَّغ عن أي إقبال أو نتائج بعد" },

  // --- maintenance report -------------------------------------------------------------------
  "report.title": { en: "Maintenance status report: {site}", ar: "تقرير حالة الصيانة: {site}" },
  "report.generated": { en: "generated {time}", ar: "أُعدّ في {time}" },
  "report.byState": { en: "Devices by state", ar: "الأجهزة حسب الحالة" },
  "report.batteries": { en: "Batteries needing attention", ar: "بطاريات تحتاج إلى عناية" },
  "report.faults": { en: "Faults", ar: "الأعطال" },
  "report.devices": { en: "All devices", ar: "كل الأجهزة" },
  "report.allSites": { en: "all sites", ar: "كل المواقع" },
  "report.print": { en: "print", ar: "طباعة" },
  "report.csv": { en: "download CSV", ar: "تنزيل CSV" },
  "report.link": { en: "maintenance report", ar: "تقرير الصيانة" },
} satisfies Record<string, { en: string; ar: string }>;

export type MessageKey = keyof typeof MESSAGES;
export type Params = Record<string, string | number>;

export function isMessageKey(key: string): key is MessageKey {
  return Object.prototype.hasOwnProperty.call(MESSAGES, key);
}

/** The text of `key` in `lang`, placeholders filled. */
export function t(lang: Lang, key: MessageKey, params: Params = {}): string {
  const text: string = MESSAGES[key][lang];
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

/** Every message, for the catalogue's own tests. */
export function allMessages(): ReadonlyArray<[MessageKey, { en: string; ar: string }]> {
  return Object.entries(MESSAGES) as Array<[MessageKey, { en: string; ar: string }]>;
}

/** Names of the parts whose bits are set in a peripheral_faults value, e.g. "printer, display". */
export function peripheralNames(lang: Lang, bits: number): string {
  const names: string[] = [];
  for (let p = 1; p <= 9; p++) {
    if (bits & (1 << p)) names.push(t(lang, `peripheral.${p}` as MessageKey));
  }
  if (bits & 1) names.push(lang === "ar" ? "غير محدد" : "unspecified");
  return names.join(lang === "ar" ? "، " : ", ");
}

/** A timestamp as "YYYY-MM-DD HH:MM" UTC (Western digits, same in both languages). */
export function formatTime(ms: number): string {
  if (!ms) return "";
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}
