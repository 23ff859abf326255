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
  "nav.turnout": { en: "Turnout", ar: "الإقبال" },
  "nav.results": { en: "Results", ar: "النتائج" },
  "nav.reconciliation": { en: "Reconciliation", ar: "المطابقة" },

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
  "col.soh": { en: "health", ar: "صحة البطارية" },
  "col.cycles": { en: "cycles", ar: "الدورات" },
  "col.register": { en: "registered", ar: "المسجلون" },
  "col.verified": { en: "verified", ar: "تم التحقق" },
  "col.exempted": { en: "exempted", ar: "المُعفَون" },
  "col.admitted": { en: "admitted", ar: "المقبولون" },
  "col.rejected": { en: "rejected", ar: "المرفوضون" },
  "col.turnout": { en: "turnout", ar: "نسبة الإقبال" },
  "col.final": { en: "final report", ar: "التقرير النهائي" },
  "col.updated": { en: "updated", ar: "آخر تحديث" },
  "col.stations": { en: "stations", ar: "المراكز" },
  "col.reporting": { en: "reporting", ar: "المُبلِّغة" },
  "col.reported": { en: "reported", ar: "أرسلت النتائج" },
  "col.contest": { en: "contest", ar: "السباق" },
  "col.option": { en: "option", ar: "الخيار" },
  "col.votes": { en: "votes", ar: "الأصوات" },
  "col.share": { en: "share", ar: "النسبة" },
  "col.blank": { en: "blank", ar: "فارغة" },
  "col.invalid": { en: "invalid", ar: "باطلة" },
  "col.ballots": { en: "ballots counted", ar: "الأوراق المعدودة" },
  "col.ballotsRejected": { en: "ballots rejected", ar: "الأوراق المرفوضة" },
  "col.verifiedVoters": { en: "verified (result device)", ar: "المتحقق منهم (جهاز النتائج)" },
  "col.difference": { en: "difference", ar: "الفرق" },
  "col.flags": { en: "flags", ar: "ملاحظات" },
  "col.signed": { en: "signed", ar: "وقت التوقيع" },
  "col.seq": { en: "record", ar: "السجل" },
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
  "detail.discharge": { en: "charge change", ar: "تغيّر الشحن" },
  "detail.perHour": { en: "{value} %/h", ar: "{value} %/ساعة" },
  "detail.alarms": { en: "power alarms", ar: "إنذارات الطاقة" },
  "detail.polls": { en: "polls", ar: "الاقتراع" },
  "detail.station": { en: "station data", ar: "بيانات المركز" },
  "alarm.1": { en: "low battery", ar: "بطارية منخفضة" },
  "alarm.2": { en: "critical battery", ar: "بطارية حرجة" },
  "alarm.3": { en: "out of storage window", ar: "خارج نطاق التخزين" },
  "alarm.4": { en: "charger fault", ar: "عطل الشاحن" },
  "alarm.5": { en: "temperature", ar: "درجة الحرارة" },
  "alarm.6": { en: "no battery", ar: "لا توجد بطارية" },
  "alarm.7": { en: "ageing cell", ar: "خلية متقادمة" },
  "alarm.8": { en: "gauge fault", ar: "عطل مقياس البطارية" },
  "polls.0": { en: "unknown", ar: "غير معروف" },
  "polls.1": { en: "no station data", ar: "لا توجد بيانات مركز" },
  "polls.2": { en: "ready", ar: "جاهز" },
  "polls.3": { en: "open", ar: "مفتوح" },
  "polls.4": { en: "closed", ar: "مغلق" },

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
    en: "charge mode {mode} but charge is {soc} %, outside the storage window {low}–{high} %",
    ar: "وضع الشحن {mode} لكن نسبة الشحن {soc} %، خارج نطاق التخزين {low}–{high} %",
  },
  "alert.ageingCell": {
    en: "ageing cell: state of health {soh} % (replace below {threshold} %), {cycles} cycles",
    ar: "خلية متقادمة: صحة البطارية {soh} % (تُستبدل دون {threshold} %)، {cycles} دورة",
  },
  "alert.batteryTemperature": {
    en: "battery at {temperature} °C, outside the charging temperature window",
    ar: "حرارة البطارية {temperature} °م، خارج نطاق حرارة الشحن",
  },
  "alert.noBattery": { en: "no battery detected", ar: "لم يُكتشف وجود بطارية" },
  "alert.gaugeFault": { en: "fuel gauge not answering or reporting nonsense", ar: "مقياس البطارية لا يستجيب أو يعطي قراءات غير معقولة" },
  "alert.resultOverdue": {
    en: "station {station}: no result {hours} h after close ({close} UTC, from the {source}); past the {deadline} h deadline: hand count",
    ar: "المركز {station}: لا نتيجة بعد {hours} ساعة من الإغلاق ({close} UTC، من {source})؛ تجاوزت مهلة {deadline} ساعات: عدّ يدوي",
  },
  "close.definition": { en: "election definition", ar: "تعريف الانتخابات" },
  "close.turnoutReport": { en: "turnout report", ar: "تقرير الإقبال" },
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
  "alert.clockAhead": {
    en: "clock {skew} ahead; set it with pollkit time sync",
    ar: "ساعة الجهاز متقدمة بمقدار {skew}؛ اضبطها بالأمر pollkit time sync",
  },
  "alert.clockBehind": {
    en: "clock {skew} behind; set it with pollkit time sync",
    ar: "ساعة الجهاز متأخرة بمقدار {skew}؛ اضبطها بالأمر pollkit time sync",
  },
  "alert.clockNeverSet": {
    en: "clock never set, {uptime} after boot; set it with pollkit time sync",
    ar: "لم تُضبط ساعة الجهاز بعد {uptime} من الإقلاع؛ اضبطها بالأمر pollkit time sync",
  },
  "alert.journalFull": {
    en: "journal full: {free} bytes free, {backlog} records waiting for a host; new records are refused until it uploads them to an agent",
    ar: "السجل ممتلئ: {free} بايت متاحة و{backlog} سجل بانتظار المضيف؛ تُرفض السجلات الجديدة حتى يرفعها إلى وكيل",
  },
  "duration.dh": { en: "{d} d {h} h", ar: "{d} يوم {h} ساعة" },
  "duration.hm": { en: "{h} h {m} min", ar: "{h} ساعة {m} دقيقة" },
  "duration.m": { en: "{m} min", ar: "{m} دقيقة" },

  // --- status -------------------------------------------------------------------------------
  "statusTable.heading": { en: "Cumulative operational status", ar: "الحالة التشغيلية التراكمية" },
  "statusTable.note": { en: "per governorate and office; silent devices are counted once, as silent", ar: "حسب المحافظة والمكتب؛ يُحسب الجهاز الصامت مرة واحدة كصامت" },

  // --- quarantine ---------------------------------------------------------------------------
  "quarantine.heading": { en: "Quarantined messages", ar: "الرسائل المحجوزة" },
  "quarantine.none": { en: "nothing quarantined", ar: "لا توجد رسائل محجوزة" },
  "quarantine.latest": { en: "latest", ar: "الأحدث" },

  // --- stations: turnout, results, reconciliation ------------------------------------------
  "filter.station": { en: "Station", ar: "المركز" },
  "filter.flagged": { en: "only flagged", ar: "المؤشَّر عليها فقط" },
  "stations.count": { en: "{shown} of {total} stations (page {page} of {pages})", ar: "{shown} من {total} مركز (الصفحة {page} من {pages})" },
  "stations.totals": { en: "Totals per governorate and office", ar: "المجاميع حسب المحافظة والمكتب" },
  "stations.scope": { en: "Totals: {area}", ar: "المجاميع: {area}" },
  "stations.country": { en: "whole country", ar: "كل البلاد" },
  "turnout.heading": { en: "Turnout per station", ar: "الإقبال حسب المركز" },
  "turnout.none": { en: "no turnout reported yet", ar: "لم يُبلَّغ عن أي إقبال بعد" },
  "turnout.hourly": { en: "Hourly turnout", ar: "الإقبال كل ساعة" },
  "turnout.byReason": { en: "Rejected by reason", ar: "المرفوضون حسب السبب" },
  "reason.unspecified": { en: "unspecified", ar: "غير محدد" },
  "reason.not-in-register": { en: "not in the register", ar: "غير مدرج في السجل" },
  "reason.already-voted": { en: "already voted", ar: "صوّت سابقاً" },
  "reason.finger-mismatch": { en: "fingerprint did not match", ar: "البصمة غير مطابقة" },
  "reason.card-mismatch": { en: "finger does not match the card", ar: "البصمة لا تطابق البطاقة" },
  "reason.card-unreadable": { en: "card unreadable", ar: "تعذّرت قراءة البطاقة" },
  "reason.capture-failed": { en: "no usable fingerprint image", ar: "تعذّر التقاط صورة بصمة صالحة" },
  "reason.exemption-cap": { en: "exemption cap reached", ar: "بلغ حد الإعفاءات" },
  "reason.exemption-denied": { en: "exemption denied", ar: "رُفض الإعفاء" },
  "reason.cancelled": { en: "cancelled", ar: "أُلغي" },
  "results.heading": { en: "Results per station", ar: "النتائج حسب المركز" },
  "results.none": { en: "no results reported yet", ar: "لم تصل أي نتائج بعد" },
  "results.reported": { en: "{reported} of {stations} stations reported, {ballots} ballots counted", ar: "أرسل {reported} من {stations} مركز نتائجه، {ballots} ورقة معدودة" },
  "results.option": { en: "option {n}", ar: "الخيار {n}" },
  "results.noDefinition": {
    en: "no election definition imported: options are shown by number (pollkit ops import-election)",
    ar: "لم يُستورد تعريف الانتخابات: تظهر الخيارات بأرقامها (pollkit ops import-election)",
  },
  "results.versions": { en: "Signed results received", ar: "النتائج الموقّعة المستلمة" },
  "results.current": { en: "counted", ar: "المعتمدة" },
  "results.exportSigned": { en: "export signed records", ar: "تصدير السجلات الموقّعة" },
  "flag.conflict": { en: "conflicting signed results", ar: "نتائج موقّعة متعارضة" },
  "flag.result-conflict": { en: "conflicting signed results", ar: "نتائج موقّعة متعارضة" },
  "flag.inconsistent": { en: "votes do not add up to ballots counted", ar: "الأصوات لا تساوي الأوراق المعدودة" },
  "flag.late": { en: "arrived after the deadline", ar: "وصلت بعد المهلة" },
  "flag.station-mismatch": { en: "device registered to another station", ar: "الجهاز مسجّل لمركز آخر" },
  "flag.role-mismatch": { en: "sent by a verification device", ar: "أُرسلت من جهاز تحقق" },
  "flag.definition-mismatch": { en: "does not match the election definition", ar: "لا تطابق تعريف الانتخابات" },
  "flag.undecodable": { en: "unreadable result", ar: "نتيجة غير مقروءة" },
  "flag.paired-count-differs": { en: "the result device's copy of the verified count differs", ar: "نسخة جهاز النتائج من عدد المتحقق منهم مختلفة" },
  "flag.partial-turnout-report": { en: "not every verification device sent its final report", ar: "لم ترسل كل أجهزة التحقق تقاريرها النهائية" },
  "recon.heading": { en: "Reconciliation: voters admitted against ballots counted", ar: "المطابقة: الناخبون المقبولون مقابل الأوراق المعدودة" },
  "recon.note": {
    en: "admitted = verified + exempted in the verification device's final report; ballots from the result device's signed result",
    ar: "المقبولون = المتحقق منهم + المُعفَون في التقرير النهائي لجهاز التحقق؛ الأوراق من النتيجة الموقّعة لجهاز النتائج",
  },
  "recon.none": { en: "nothing to reconcile yet", ar: "لا شيء للمطابقة بعد" },
  "recon.match": { en: "agree", ar: "متطابق" },
  "recon.mismatch": { en: "disagree", ar: "غير متطابق" },
  "recon.missing-result": { en: "result missing", ar: "النتيجة مفقودة" },
  "recon.missing-turnout": { en: "turnout report missing", ar: "تقرير الإقبال مفقود" },
  "recon.open": { en: "polls open", ar: "الاقتراع جارٍ" },
  "station.heading": { en: "Station {id}", ar: "المركز {id}" },
  "station.close": { en: "closed {close} UTC (from the {source}); result due by {due} UTC", ar: "أُغلق {close} UTC (من {source})؛ موعد النتيجة قبل {due} UTC" },

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

/** The message `${prefix}.${value}` (an enum value, a reason name...), or the value itself when the catalogue has none. */
export function label(lang: Lang, prefix: string, value: string | number): string {
  const key = `${prefix}.${value}`;
  return isMessageKey(key) ? t(lang, key) : String(value);
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
