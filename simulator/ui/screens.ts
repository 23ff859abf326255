// Renders the verification device's screens (a message key with parameters, see
// device/services/verification/screens.ts) as text in Arabic (ar), Kurdish Sorani (ckb) and
// English (en), the way the device's display would. Arabic and Sorani lines start with a
// RIGHT-TO-LEFT MARK (U+200F) so that a terminal or a log viewer lays them out right to left, and
// their numbers use Eastern Arabic digits (٠١٢٣٤٥٦٧٨٩), as both languages write them.

import type { Screen } from "../../device/platform/platform.ts";

export type Language = "ar" | "ckb" | "en";
export const LANGUAGES: readonly Language[] = ["ar", "ckb", "en"];

/** U+200F RIGHT-TO-LEFT MARK. */
export const RLM = "\u200f";

type Entry = Record<Language, string>;

const C: Record<string, Entry> = {
  "polls.not_loaded": {
    en: "No station register loaded. Call a technician.",
    ar: "لم يُحمَّل سجل ناخبي المحطة. اتصل بالفني.",
    ckb: "تۆماری دەنگدەرانی بنکە بار نەکراوە. پەیوەندی بە تەکنیکارەوە بکە.",
  },
  "polls.ready": {
    en: "Register loaded: {voters} voters. The polls are not open yet.",
    ar: "تم تحميل السجل: {voters} ناخبًا. لم يُفتح الاقتراع بعد.",
    ckb: "تۆمار بار کرا: {voters} دەنگدەر. دەنگدان هێشتا نەکراوەتەوە.",
  },
  "verify.present_card": {
    en: "Polls open. Place the voter card on the reader. Voted so far: {verified} (exempted {exempted})",
    ar: "الاقتراع مفتوح. ضع بطاقة الناخب على القارئ. صوّت حتى الآن: {verified} (منهم {exempted} بإعفاء)",
    ckb: "دەنگدان کراوەیە. کارتی دەنگدەر لەسەر خوێنەرەکە دابنێ. تا ئێستا دەنگیان داوە: {verified} (لەوانە {exempted} بە لێبووردن)",
  },
  "polls.not_open": {
    en: "The polls are not open: cards are not accepted.",
    ar: "الاقتراع غير مفتوح: لا تُقبل البطاقات.",
    ckb: "دەنگدان کراوە نییە: کارت وەرناگیرێت.",
  },
  "polls.closing": {
    en: "Closing the polls: signing the turnout report...",
    ar: "جارٍ إغلاق الاقتراع وتوقيع تقرير المشاركة...",
    ckb: "دەنگدان دادەخرێت و ڕاپۆرتی بەشداری واژۆ دەکرێت...",
  },
  "polls.closed": {
    en: "Polls closed. Voted: {verified} (exempted {exempted}), rejected: {rejected}. The turnout report is signed.",
    ar: "أُغلق الاقتراع. صوّت: {verified} (منهم {exempted} بإعفاء)، المرفوض: {rejected}. تقرير المشاركة موقَّع.",
    ckb: "دەنگدان داخرا. دەنگیان دا: {verified} (لەوانە {exempted} بە لێبووردن)، ڕەتکراوە: {rejected}. ڕاپۆرتی بەشداری واژۆ کرا.",
  },
  "verify.reading_card": {
    en: "Reading the card... keep it on the reader.",
    ar: "جارٍ قراءة البطاقة... أبقِها على القارئ.",
    ckb: "کارتەکە دەخوێندرێتەوە... لەسەر خوێنەرەکە بیهێڵەوە.",
  },
  "verify.supervisor_card": {
    en: "This is a supervisor card. Place a voter card, or press Supervisor first.",
    ar: "هذه بطاقة مشرف. ضع بطاقة ناخب، أو اضغط زر المشرف أولًا.",
    ckb: "ئەمە کارتی سەرپەرشتیارە. کارتی دەنگدەر دابنێ، یان سەرەتا دوگمەی سەرپەرشتیار دابگرە.",
  },
  "verify.present_finger": {
    en: "Place your finger on the sensor (attempt {attempt} of {max}).",
    ar: "ضع إصبعك على المستشعر (المحاولة {attempt} من {max}).",
    ckb: "پەنجەت لەسەر هەستەوەرەکە دابنێ (هەوڵی {attempt} لە {max}).",
  },
  "verify.fail.no_finger": {
    en: "No finger on the sensor (attempt {attempt} of {max}).",
    ar: "لم يوضع إصبع على المستشعر (المحاولة {attempt} من {max}).",
    ckb: "هیچ پەنجەیەک لەسەر هەستەوەرەکە نەبوو (هەوڵی {attempt} لە {max}).",
  },
  "verify.fail.poor_image": {
    en: "The fingerprint image is too poor (attempt {attempt} of {max}). Clean and dry the finger.",
    ar: "صورة البصمة غير واضحة (المحاولة {attempt} من {max}). نظّف الإصبع وجففه.",
    ckb: "وێنەی پەنجەمۆرەکە ڕوون نییە (هەوڵی {attempt} لە {max}). پەنجەکەت پاک و وشک بکەرەوە.",
  },
  "verify.fail.timeout": {
    en: "The sensor did not answer in time (attempt {attempt} of {max}).",
    ar: "لم يستجب المستشعر في الوقت المحدد (المحاولة {attempt} من {max}).",
    ckb: "هەستەوەرەکە لە کاتی خۆیدا وەڵامی نەدایەوە (هەوڵی {attempt} لە {max}).",
  },
  "verify.fail.no_match": {
    en: "The fingerprint does not match (attempt {attempt} of {max}).",
    ar: "البصمة غير مطابقة (المحاولة {attempt} من {max}).",
    ckb: "پەنجەمۆرەکە ناگونجێت (هەوڵی {attempt} لە {max}).",
  },
  "verify.fail.sensor": {
    en: "Fingerprint sensor error (attempt {attempt} of {max}).",
    ar: "خطأ في مستشعر البصمة (المحاولة {attempt} من {max}).",
    ckb: "هەڵە لە هەستەوەری پەنجەمۆر (هەوڵی {attempt} لە {max}).",
  },
  "verify.recording": {
    en: "Recording... keep the card on the reader.",
    ar: "جارٍ التسجيل... أبقِ البطاقة على القارئ.",
    ckb: "تۆمار دەکرێت... کارتەکە لەسەر خوێنەرەکە بهێڵەوە.",
  },
  "verify.verified": {
    en: "VERIFIED. The voter may vote. Voted so far: {verified}",
    ar: "تم التحقق. يمكن للناخب التصويت. عدد المصوّتين حتى الآن: {verified}",
    ckb: "پشتڕاستکرایەوە. دەنگدەر دەتوانێت دەنگ بدات. تا ئێستا دەنگیان داوە: {verified}",
  },
  "verify.exempted": {
    en: "EXEMPTED by the supervisor. The voter may vote. Exemptions: {exempted} of {cap}",
    ar: "إعفاء من المشرف. يمكن للناخب التصويت. الإعفاءات: {exempted} من {cap}",
    ckb: "لێبووردنی سەرپەرشتیار. دەنگدەر دەتوانێت دەنگ بدات. لێبووردنەکان: {exempted} لە {cap}",
  },
  "verify.rejected.unspecified": {
    en: "NOT VERIFIED: device error. Call a technician.",
    ar: "لم يتم التحقق: خطأ في الجهاز. اتصل بالفني.",
    ckb: "پشتڕاست نەکرایەوە: هەڵەی ئامێر. پەیوەندی بە تەکنیکارەوە بکە.",
  },
  "verify.rejected.not_in_register": {
    en: "NOT VERIFIED: this voter is not on this station's register.",
    ar: "لم يتم التحقق: هذا الناخب غير مدرج في سجل هذه المحطة.",
    ckb: "پشتڕاست نەکرایەوە: ئەم دەنگدەرە لە تۆماری ئەم بنکەیەدا نییە.",
  },
  "verify.rejected.already_voted": {
    en: "NOT VERIFIED: this voter has already voted.",
    ar: "لم يتم التحقق: هذا الناخب صوّت سابقًا.",
    ckb: "پشتڕاست نەکرایەوە: ئەم دەنگدەرە پێشتر دەنگی داوە.",
  },
  "verify.rejected.finger_mismatch": {
    en: "NOT VERIFIED: the fingerprint did not match in three attempts.",
    ar: "لم يتم التحقق: لم تتطابق البصمة في ثلاث محاولات.",
    ckb: "پشتڕاست نەکرایەوە: پەنجەمۆرەکە لە سێ هەوڵدا نەگونجا.",
  },
  "verify.rejected.card_mismatch": {
    en: "NOT VERIFIED: the fingerprint does not match the card.",
    ar: "لم يتم التحقق: البصمة لا تطابق البطاقة.",
    ckb: "پشتڕاست نەکرایەوە: پەنجەمۆرەکە لەگەڵ کارتەکە ناگونجێت.",
  },
  "verify.rejected.card_unreadable": {
    en: "NOT VERIFIED: the card cannot be read.",
    ar: "لم يتم التحقق: تعذّرت قراءة البطاقة.",
    ckb: "پشتڕاست نەکرایەوە: کارتەکە ناخوێندرێتەوە.",
  },
  "verify.rejected.capture_failed": {
    en: "NOT VERIFIED: no usable fingerprint in three attempts.",
    ar: "لم يتم التحقق: لم تُلتقط بصمة صالحة في ثلاث محاولات.",
    ckb: "پشتڕاست نەکرایەوە: لە سێ هەوڵدا هیچ پەنجەمۆرێکی بەکەڵک وەرنەگیرا.",
  },
  "verify.rejected.exemption_cap": {
    en: "NOT VERIFIED: the station's limit of exemptions is reached.",
    ar: "لم يتم التحقق: بلغت المحطة الحد الأقصى للإعفاءات.",
    ckb: "پشتڕاست نەکرایەوە: بنکەکە گەیشتووەتە سنووری لێبووردنەکان.",
  },
  "verify.rejected.exemption_denied": {
    en: "NOT VERIFIED: exemption refused (not a supervisor card of this station).",
    ar: "لم يتم التحقق: رُفض الإعفاء (ليست بطاقة مشرف لهذه المحطة).",
    ckb: "پشتڕاست نەکرایەوە: لێبووردن ڕەتکرایەوە (کارتی سەرپەرشتیاری ئەم بنکەیە نییە).",
  },
  "verify.rejected.cancelled": {
    en: "Verification cancelled.",
    ar: "أُلغي التحقق.",
    ckb: "پشتڕاستکردنەوە هەڵوەشایەوە.",
  },
  "verify.error.not_recorded": {
    en: "NOT RECORDED (storage full or signing failed): the voter is not marked as voted. Call a technician.",
    ar: "لم يُسجَّل (الذاكرة ممتلئة أو تعذّر التوقيع): لم يُؤشَّر على الناخب بأنه صوّت. اتصل بالفني.",
    ckb: "تۆمار نەکرا (بیرگە پڕە یان واژۆکردن سەرکەوتوو نەبوو): دەنگدەر وەک دەنگدەر نیشانە نەکرا. پەیوەندی بە تەکنیکارەوە بکە.",
  },
  "exempt.present_supervisor_card": {
    en: "Exemption: supervisor, place your card on the reader (exemptions used: {exempted} of {cap}).",
    ar: "إعفاء: أيها المشرف، ضع بطاقتك على القارئ (الإعفاءات المستخدمة: {exempted} من {cap}).",
    ckb: "لێبووردن: سەرپەرشتیار، کارتەکەت لەسەر خوێنەرەکە دابنێ (لێبووردنی بەکارهاتوو: {exempted} لە {cap}).",
  },
  "supervisor.present_card": {
    en: "Supervisor: place your card on the reader.",
    ar: "أيها المشرف، ضع بطاقتك على القارئ.",
    ckb: "سەرپەرشتیار، کارتەکەت لەسەر خوێنەرەکە دابنێ.",
  },
  "supervisor.denied": {
    en: "Not a supervisor card of this station.",
    ar: "ليست بطاقة مشرف لهذه المحطة.",
    ckb: "ئەمە کارتی سەرپەرشتیاری ئەم بنکەیە نییە.",
  },
  "supervisor.confirm_open": {
    en: "Open the polls for {voters} voters? OK to confirm, Cancel to go back.",
    ar: "فتح الاقتراع لـ {voters} ناخبًا؟ اضغط «موافق» للتأكيد أو «إلغاء» للرجوع.",
    ckb: "دەنگدان بۆ {voters} دەنگدەر بکرێتەوە؟ بۆ پشتڕاستکردنەوە «باشە» و بۆ گەڕانەوە «پاشگەزبوونەوە» دابگرە.",
  },
  "supervisor.confirm_close": {
    en: "Close the polls? Voted: {verified} (exempted {exempted}). OK to confirm, Cancel to go back.",
    ar: "إغلاق الاقتراع؟ صوّت: {verified} (منهم {exempted} بإعفاء). اضغط «موافق» للتأكيد أو «إلغاء» للرجوع.",
    ckb: "دەنگدان دابخرێت؟ دەنگیان دا: {verified} (لەوانە {exempted} بە لێبووردن). بۆ پشتڕاستکردنەوە «باشە» و بۆ گەڕانەوە «پاشگەزبوونەوە» دابگرە.",
  },
  "device.error": {
    en: "Device error ({part}). Call a technician.",
    ar: "خطأ في الجهاز ({part}). اتصل بالفني.",
    ckb: "هەڵەی ئامێر ({part}). پەیوەندی بە تەکنیکارەوە بکە.",
  },
};

/** Names of the parts a device-error screen may name. */
const PARTS: Record<string, Entry> = {
  register: { en: "station register", ar: "سجل المحطة", ckb: "تۆماری بنکە" },
  reader: { en: "card reader", ar: "قارئ البطاقات", ckb: "خوێنەری کارت" },
  fingerprint: { en: "fingerprint sensor", ar: "مستشعر البصمة", ckb: "هەستەوەری پەنجەمۆر" },
};

const EASTERN_DIGITS = "٠١٢٣٤٥٦٧٨٩";

export function isRtl(lang: Language): boolean {
  return lang === "ar" || lang === "ckb";
}

/** Western digits to Eastern Arabic ones (for ar and ckb). */
export function localDigits(text: string, lang: Language): string {
  if (!isRtl(lang)) return text;
  return text.replace(/[0-9]/g, (d) => EASTERN_DIGITS[d.charCodeAt(0) - 48]);
}

/** Every message key the catalogue knows. */
export function catalogueKeys(): string[] {
  return Object.keys(C).sort();
}

/** The parameter names a key's text uses (the same in every language). */
export function paramsOf(key: string): string[] {
  const e = C[key];
  if (!e) return [];
  const found = new Set<string>();
  for (const m of e.en.matchAll(/\{([a-z_]+)\}/g)) found.add(m[1]);
  return [...found].sort();
}

/**
 * The screen as text in `lang`. An unknown key or a missing parameter is shown as such (never a
 * crash): "[unknown screen <key>]", "{name}".
 */
export function renderScreen(screen: Screen, lang: Language): string {
  const entry = C[screen.key];
  let text: string;
  if (!entry) text = `[unknown screen ${screen.key}]`;
  else {
    text = entry[lang].replace(/\{([a-z_]+)\}/g, (whole, name: string) => {
      const v = screen.params[name];
      if (v === undefined) return whole;
      if (name === "part" && typeof v === "string" && PARTS[v]) return PARTS[v][lang];
      return localDigits(String(v), lang);
    });
  }
  return isRtl(lang) ? RLM + text : text;
}
