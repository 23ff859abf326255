// Every string the technician CLI shows a person, in English and Arabic, and the one table of the
// CLI's exit codes. Placeholders are `{name}`; numbers are passed already formatted, in Western
// digits, so that values read the same in both languages.

export type Lang = "en" | "ar";
export const LANGS: readonly Lang[] = ["en", "ar"];

interface Text {
  en: string;
  ar: string;
}

const MESSAGES = {
  // --- program and help ---------------------------------------------------------------------
  "program.description": {
    en: "Technician tools for pollkit election devices: list, inspect, test and update devices through the host agent",
    ar: "أدوات الفنيين لأجهزة الانتخابات pollkit: عرض الأجهزة وفحصها واختبارها وتحديثها عبر الوكيل المضيف",
  },
  "opt.agent": {
    en: "URL of the host agent's control API (now {url}: from POLLKIT_AGENT, else {builtin})",
    ar: "عنوان واجهة التحكم في الوكيل المضيف (حالياً {url}: من POLLKIT_AGENT، وإلا {builtin})",
  },
  "opt.json": { en: "print JSON for scripts instead of tables", ar: "اطبع JSON للبرامج النصية بدلاً من الجداول" },
  "opt.lang": {
    en: "language of messages: en or ar (default from LC_ALL, LC_MESSAGES or LANG)",
    ar: "لغة الرسائل: en أو ar (الافتراضي من LC_ALL أو LC_MESSAGES أو LANG)",
  },
  "help.option": { en: "show help for a command", ar: "اعرض المساعدة لأمر" },
  "help.usage": { en: "Usage:", ar: "الاستخدام:" },
  "help.options": { en: "Options:", ar: "الخيارات:" },
  "help.commands": { en: "Commands:", ar: "الأوامر:" },
  "help.arguments": { en: "Arguments:", ar: "المعاملات:" },
  "help.globalOptions": { en: "Global Options:", ar: "الخيارات العامة:" },
  "help.exitCodes": { en: "Exit codes:", ar: "رموز الخروج:" },

  // --- commands -----------------------------------------------------------------------------
  "cmd.agent": {
    en: "run the host agent (device sessions, outbox, MQTT, control API) until Ctrl-C",
    ar: "شغّل الوكيل المضيف (جلسات الأجهزة وصندوق الصادر وMQTT وواجهة التحكم) حتى Ctrl-C",
  },
  "opt.config": { en: "agent configuration file (JSON)", ar: "ملف إعدادات الوكيل (JSON)" },
  "cmd.devices": { en: "list the devices connected to the agent", ar: "اعرض الأجهزة المتصلة بالوكيل" },
  "cmd.status": { en: "show one device's identity, health and counters", ar: "اعرض هوية جهاز وحالته الصحية وعداداته" },
  "arg.device": { en: "device id, as listed by: pollkit devices", ar: "معرّف الجهاز كما يظهر في: pollkit devices" },
  "cmd.logs": { en: "print a device's console log", ar: "اطبع سجل وحدة التحكم في الجهاز" },
  "opt.follow": { en: "keep printing new lines until Ctrl-C", ar: "تابع طباعة الأسطر الجديدة حتى Ctrl-C" },
  "opt.lines": { en: "number of recent lines (1-500)", ar: "عدد الأسطر الأخيرة (1-500)" },
  "cmd.time": { en: "device clocks (time sync)", ar: "ساعات الأجهزة (time sync)" },
  "cmd.timeSync": { en: "set device clocks from this computer's clock", ar: "اضبط ساعات الأجهزة من ساعة هذا الحاسوب" },
  "opt.syncDevice": {
    en: "only this device (repeat for several; default: every connected device)",
    ar: "هذا الجهاز فقط (كرّر الخيار لعدة أجهزة؛ الافتراضي: كل الأجهزة المتصلة)",
  },
  "cmd.diag": {
    en: "run a device's self-test of every part (exit 5 if a part fails)",
    ar: "شغّل الاختبار الذاتي لكل مكوّنات الجهاز (رمز الخروج 5 إذا فشل مكوّن)",
  },
  "cmd.reboot": { en: "restart a device now", ar: "أعد تشغيل الجهاز الآن" },
  "cmd.decode": {
    en: "decode frame lines (!... and *...) or a hex payload into JSON; no agent needed",
    ar: "فك ترميز أسطر الإطارات (!... و*...) أو حمولة سداسية عشرية إلى JSON؛ لا يحتاج إلى الوكيل",
  },
  "arg.frame": { en: "frame lines (quote them); - reads lines from standard input", ar: "أسطر الإطار (ضعها بين علامتي اقتباس)؛ - لقراءة الأسطر من الإدخال القياسي" },
  "opt.hex": { en: "an encoded Envelope in hexadecimal, without framing", ar: "رسالة Envelope مرمّزة بالنظام السداسي عشري، بدون إطار" },
  "cmd.dfu": {
    en: "write a firmware image to a device in its USB DFU bootloader",
    ar: "اكتب صورة برنامج ثابت إلى جهاز في محمّل الإقلاع USB DFU",
  },
  "opt.image": { en: "firmware image file", ar: "ملف صورة البرنامج الثابت" },
  "cmd.upload": {
    en: "send a file to a device through the agent (station data, election definition, configuration or firmware), with progress",
    ar: "أرسل ملفاً إلى جهاز عبر الوكيل (بيانات المركز أو تعريف الانتخابات أو الإعدادات أو البرنامج الثابت) مع عرض التقدم",
  },
  "arg.file": { en: "the file to send", ar: "الملف المراد إرساله" },
  "opt.kind": { en: "what the file is: {kinds}", ar: "نوع الملف: {kinds}" },
  "opt.name": {
    en: "name the device keeps with the data (default: the file's name)",
    ar: "الاسم الذي يحفظه الجهاز مع البيانات (الافتراضي: اسم الملف)",
  },
  "opt.transferSize": {
    en: "bytes per DFU block, for a device that does not announce its own",
    ar: "عدد البايتات في كل كتلة DFU، لجهاز لا يعلن هذا العدد بنفسه",
  },
  "opt.dfuDevice": {
    en: "USB serial number of the device to update (needed when several are in DFU mode)",
    ar: "الرقم التسلسلي USB للجهاز المراد تحديثه (مطلوب عند وجود عدة أجهزة في وضع DFU)",
  },

  // --- table columns and field names --------------------------------------------------------
  "col.device": { en: "device", ar: "الجهاز" },
  "col.role": { en: "role", ar: "الدور" },
  "col.transport": { en: "transport", ar: "الاتصال" },
  "col.address": { en: "address", ar: "العنوان" },
  "col.state": { en: "state", ar: "الحالة" },
  "col.firmware": { en: "firmware", ar: "البرنامج الثابت" },
  "col.battery": { en: "battery", ar: "البطارية" },
  "col.backlog": { en: "backlog", ar: "سجلات معلّقة" },
  "col.lastSeen": { en: "last seen", ar: "آخر ظهور" },
  "col.part": { en: "part", ar: "المكوّن" },
  "col.verdict": { en: "verdict", ar: "النتيجة" },
  "col.detail": { en: "detail", ar: "التفاصيل" },
  "col.result": { en: "result", ar: "النتيجة" },
  "col.message": { en: "message", ar: "الرسالة" },

  "role.verification": { en: "verification (VVD)", ar: "التحقق (VVD)" },
  "role.result": { en: "result (RAD)", ar: "النتائج (RAD)" },
  "role.unknown": { en: "unknown", ar: "غير معروف" },

  "value.none": { en: "-", ar: "-" },
  "value.ok": { en: "ok", ar: "تم" },
  "value.failed": { en: "failed", ar: "فشل" },
  "value.charging": { en: "{ma} mA (charging)", ar: "{ma} mA (يشحن)" },
  "value.discharging": { en: "{ma} mA (discharging)", ar: "{ma} mA (يفرغ)" },
  "value.clockNotSet": { en: "not set", ar: "غير مضبوطة" },
  "value.noFaults": { en: "none", ar: "لا يوجد" },

  "ago.seconds": { en: "{n} s ago", ar: "منذ {n} ث" },
  "ago.minutes": { en: "{n} min ago", ar: "منذ {n} د" },
  "ago.hours": { en: "{n} h ago", ar: "منذ {n} س" },
  "ago.days": { en: "{n} d ago", ar: "منذ {n} ي" },
  "duration.seconds": { en: "{s} s", ar: "{s} ث" },
  "duration.minutes": { en: "{m} min {s} s", ar: "{m} د {s} ث" },
  "duration.hours": { en: "{h} h {m} min", ar: "{h} س {m} د" },
  "duration.days": { en: "{d} d {h} h", ar: "{d} ي {h} س" },

  "section.identity": { en: "Identity", ar: "الهوية" },
  "section.health": { en: "Health", ar: "الحالة الصحية" },
  "section.counters": { en: "Counters", ar: "العدادات" },
  "field.device": { en: "device", ar: "الجهاز" },
  "field.role": { en: "role", ar: "الدور" },
  "field.hardware": { en: "hardware model", ar: "طراز العتاد" },
  "field.firmware": { en: "firmware", ar: "البرنامج الثابت" },
  "field.bootId": { en: "boot id", ar: "معرّف الإقلاع" },
  "field.transport": { en: "transport", ar: "الاتصال" },
  "field.address": { en: "address", ar: "العنوان" },
  "field.state": { en: "state", ar: "الحالة" },
  "field.lastSeen": { en: "last seen", ar: "آخر ظهور" },
  "field.keyFingerprint": { en: "public key (SHA-256, first 16 hex)", ar: "المفتاح العام (SHA-256، أول 16 رمزاً)" },
  "field.batteryMv": { en: "battery voltage", ar: "جهد البطارية" },
  "field.stateOfCharge": { en: "state of charge", ar: "مستوى الشحن" },
  "field.current": { en: "current", ar: "التيار" },
  "field.temperature": { en: "temperature", ar: "درجة الحرارة" },
  "field.chargeState": { en: "charger", ar: "الشاحن" },
  "field.chargeMode": { en: "charge mode", ar: "وضع الشحن" },
  "field.powerAlarms": { en: "power alarms", ar: "إنذارات الطاقة" },
  "field.cycleCount": { en: "charge cycles", ar: "دورات الشحن" },
  "field.stateOfHealth": { en: "battery health", ar: "صحة البطارية" },
  "field.dischargeRate": { en: "charge rate", ar: "معدل الشحن" },
  "field.station": { en: "station", ar: "المركز" },
  "field.pollsState": { en: "polls", ar: "الاقتراع" },
  "field.chargerFaults": { en: "charger faults (bits)", ar: "أعطال الشاحن (بتات)" },
  "field.uptime": { en: "uptime", ar: "مدة التشغيل" },
  "field.rebootReason": { en: "last reboot", ar: "سبب آخر إعادة تشغيل" },
  "field.freeMemory": { en: "free memory", ar: "الذاكرة المتاحة" },
  "field.freeStorage": { en: "free storage", ar: "مساحة التخزين المتاحة" },
  "field.journalBacklog": { en: "records not yet acknowledged", ar: "سجلات لم يُؤكَّد استلامها" },
  "field.peripheralFaults": { en: "failed parts", ar: "المكوّنات المعطّلة" },
  "field.clock": { en: "device clock (at last report)", ar: "ساعة الجهاز (عند آخر تقرير)" },
  "field.errorCount": { en: "link errors since boot", ar: "أخطاء الاتصال منذ الإقلاع" },
  "field.records": { en: "records stored", ar: "السجلات المخزّنة" },
  "field.duplicates": { en: "duplicates dropped", ar: "التكرارات المحذوفة" },
  "field.errors": { en: "errors", ar: "الأخطاء" },
  "status.noHealth": { en: "no health report yet", ar: "لم يصل تقرير صحي بعد" },

  // --- command outcomes ---------------------------------------------------------------------
  "devices.none": { en: "No devices are connected to the agent at {url}.", ar: "لا توجد أجهزة متصلة بالوكيل على {url}." },
  "devices.noneHint": {
    en: "Plug a device in and wait a few seconds; for simulated or unlisted ports, check serial.paths in the agent's configuration.",
    ar: "وصّل جهازاً وانتظر بضع ثوانٍ؛ وللمنافذ المحاكاة أو غير المدرجة راجع serial.paths في إعدادات الوكيل.",
  },
  "logs.none": { en: "No log lines from {device} yet.", ar: "لا توجد أسطر سجل من {device} بعد." },
  "logs.closed": { en: "{device} disconnected; the log stream ended.", ar: "انقطع اتصال {device}؛ انتهى بث السجل." },
  "logs.lost": { en: "The agent closed the log stream.", ar: "أغلق الوكيل بث السجل." },
  "time.none": { en: "No devices are connected: no clock was set.", ar: "لا توجد أجهزة متصلة: لم تُضبط أي ساعة." },
  "time.failed": { en: "{n} of {total} devices did not take the time.", ar: "لم يقبل {n} من {total} من الأجهزة الوقت." },
  "time.failedHint": { en: "Check those devices with: pollkit status <device>", ar: "افحص تلك الأجهزة بالأمر: pollkit status <device>" },
  "diag.failed": { en: "{device}: {n} part(s) failed: {parts}.", ar: "{device}: فشل {n} من المكوّنات: {parts}." },
  "diag.failedHint": {
    en: "Service or replace the part, then run again: pollkit diag {device}",
    ar: "أصلح المكوّن أو استبدله، ثم أعد الاختبار: pollkit diag {device}",
  },
  "diag.passed": { en: "{device}: no part failed.", ar: "{device}: لم يفشل أي مكوّن." },
  "diag.empty": { en: "{device} reported no parts.", ar: "لم يبلّغ {device} عن أي مكوّن." },
  "reboot.done": {
    en: "{device} is restarting; it reconnects by itself in a few seconds.",
    ar: "يُعاد تشغيل {device}؛ سيعاود الاتصال تلقائياً خلال ثوانٍ.",
  },
  "charge.badMode": { en: "unknown charge mode \"{mode}\": use one of {modes}", ar: "وضع شحن غير معروف \"{mode}\": استخدم أحد {modes}" },
  "charge.noDevice": { en: "name at least one device, or use --all", ar: "حدّد جهازاً واحداً على الأقل، أو استخدم --all" },
  "charge.allAndDevices": { en: "use either device names or --all, not both", ar: "استخدم أسماء الأجهزة أو --all، لا كليهما" },
  "charge.set": { en: "charge mode {mode}", ar: "وضع الشحن {mode}" },
  "charge.someFailed": { en: "{n} of {total} device(s) did not take the charge mode.", ar: "{n} من {total} جهاز لم يقبل وضع الشحن." },
  "cmd.chargeMode": {
    en: "set how devices charge: normal (to full), storage (hold 40-60 %), maintain (top up on schedule)",
    ar: "اضبط طريقة الشحن: normal (حتى الامتلاء)، storage (إبقاء 40-60 ٪)، maintain (تعبئة دورية)",
  },
  "opt.allDevices": { en: "every device this agent serves", ar: "كل الأجهزة التي يخدمها هذا الوكيل" },
  "arg.chargeTargets": {
    en: "devices, then the mode: normal | storage | maintain",
    ar: "الأجهزة ثم الوضع: normal | storage | maintain",
  },
  "command.rejected": { en: "{device} refused the command: {status}{detail}", ar: "رفض {device} الأمر: {status}{detail}" },
  "command.deniedHint": {
    en: "This command needs a technician's authority; ask your supervisor for a technician token.",
    ar: "يحتاج هذا الأمر إلى صلاحية فني؛ اطلب رمز فني من المشرف.",
  },
  "command.rejectedHint": { en: "Check the device with: pollkit status {device}", ar: "افحص الجهاز بالأمر: pollkit status {device}" },

  // --- agent --------------------------------------------------------------------------------
  "agent.listening": { en: "Control API listening on {url}", ar: "واجهة التحكم تستمع على {url}" },
  "agent.otherUrl": {
    en: "From other terminals: pollkit --agent {url} devices (or set POLLKIT_AGENT={url})",
    ar: "من الطرفيات الأخرى: pollkit --agent {url} devices (أو اضبط POLLKIT_AGENT={url})",
  },
  "agent.stopHint": { en: "Ctrl-C stops the agent.", ar: "اضغط Ctrl-C لإيقاف الوكيل." },
  "cmd.ops": { en: "run the operations console (ingest, store, dashboard, reports) from a config file", ar: "تشغيل منصة العمليات (الاستقبال والتخزين ولوحة المتابعة والتقارير) من ملف إعدادات" },
  "ops.listening": { en: "Operations dashboard on {url}", ar: "لوحة متابعة العمليات على {url}" },
  "ops.notAvailable": { en: "The operations console is not available in this build: {detail}", ar: "منصة العمليات غير متاحة في هذا الإصدار: {detail}" },
  "ops.startFailed": { en: "The operations console could not start: {detail}", ar: "تعذّر تشغيل منصة العمليات: {detail}" },
  "ops.configHint": { en: "Fix the file, then start again: pollkit ops --config {file}", ar: "أصلح الملف، ثم أعد التشغيل: pollkit ops --config {file}" },
  "agent.stopping": { en: "Stopping the agent...", ar: "جارٍ إيقاف الوكيل..." },
  "agent.stopped": { en: "Agent stopped.", ar: "توقف الوكيل." },
  "agent.notAvailable": {
    en: "The host agent is not available in this build: {detail}",
    ar: "الوكيل المضيف غير متاح في هذا الإصدار: {detail}",
  },
  "agent.notAvailableHint": {
    en: "Install the full pollkit package on this machine, or run the agent on the charging rack.",
    ar: "ثبّت حزمة pollkit الكاملة على هذا الجهاز، أو شغّل الوكيل على رف الشحن.",
  },
  "agent.badConfig": { en: "The configuration {file} is not usable: {detail}", ar: "ملف الإعدادات {file} غير صالح: {detail}" },
  "agent.badConfigHint": { en: "Fix the file, then start again: pollkit agent --config {file}", ar: "أصلح الملف، ثم أعد التشغيل: pollkit agent --config {file}" },
  "agent.portInUse": { en: "The control port {address} is already in use.", ar: "منفذ التحكم {address} مستخدم بالفعل." },
  "agent.portInUseHint": {
    en: "Another agent may be running (check with: pollkit devices); or set control.port in the configuration.",
    ar: "قد يكون وكيل آخر قيد التشغيل (تحقق بالأمر: pollkit devices)؛ أو اضبط control.port في الإعدادات.",
  },
  "agent.startFailed": { en: "The agent could not start: {detail}", ar: "تعذّر بدء تشغيل الوكيل: {detail}" },
  "agent.stopFailed": { en: "The agent did not stop cleanly: {detail}", ar: "لم يتوقف الوكيل بشكل سليم: {detail}" },

  // --- decode -------------------------------------------------------------------------------
  "decode.nothing": {
    en: "Nothing to decode: give frame lines, - for standard input, or --hex <payload>.",
    ar: "لا يوجد ما يُفك ترميزه: أعطِ أسطر إطار، أو - للإدخال القياسي، أو --hex <payload>.",
  },
  "decode.hexAndFrames": { en: "Give frame lines or --hex, not both.", ar: "أعطِ أسطر الإطار أو --hex، لا الاثنين معاً." },
  "decode.notFrameLine": {
    en: "Line {line} is not a frame line: it must start with ! (first line) or * (continuation).",
    ar: "السطر {line} ليس سطر إطار: يجب أن يبدأ بـ ! (السطر الأول) أو * (سطر تكملة).",
  },
  "decode.badBase64": { en: "Line {line}: bad base64 ({detail}).", ar: "السطر {line}: ترميز base64 غير صالح ({detail})." },
  "decode.cutLine": {
    en: "Line {line} is truncated or damaged: {chars} base64 characters, not a multiple of 4.",
    ar: "السطر {line} مقطوع أو تالف: {chars} من رموز base64، وهو عدد لا يقبل القسمة على 4.",
  },
  "decode.badCrc": {
    en: "Bad CRC in the frame starting at line {line}: its CRC-16 does not match its content (the frame was altered or mis-copied).",
    ar: "CRC غير صحيح في الإطار الذي يبدأ في السطر {line}: لا يطابق CRC-16 محتوى الإطار (تغيّر الإطار أو نُسخ بشكل خاطئ).",
  },
  "decode.truncated": {
    en: "The frame starting at line {line} is truncated: {have} of {need} bytes.",
    ar: "الإطار الذي يبدأ في السطر {line} مقطوع: {have} من {need} بايت.",
  },
  "decode.orphan": {
    en: "Line {line} continues a frame whose first line (!...) is missing.",
    ar: "السطر {line} تكملة لإطار ينقصه سطره الأول (!...).",
  },
  "decode.tooLarge": { en: "Line {line}: frame too large ({detail}).", ar: "السطر {line}: الإطار كبير جداً ({detail})." },
  "decode.malformed": { en: "Line {line}: malformed frame ({detail}).", ar: "السطر {line}: إطار غير سليم ({detail})." },
  "decode.notEnvelope": {
    en: "Frame {frame} is not a pollkit Envelope: {detail}.",
    ar: "الإطار {frame} ليس رسالة Envelope من pollkit: {detail}.",
  },
  "decode.emptyEnvelope": { en: "it holds no known message", ar: "لا يحتوي على أي رسالة معروفة" },
  "decode.noFrames": { en: "No frame found in the input (only console text).", ar: "لم يُعثر على أي إطار في المدخلات (نص وحدة التحكم فقط)." },
  "decode.badHex": { en: "--hex is not a hexadecimal payload: {detail}.", ar: "قيمة --hex ليست حمولة سداسية عشرية: {detail}." },
  "decode.hexOddLength": { en: "odd number of digits", ar: "عدد الأرقام فردي" },
  "decode.hexBadChar": { en: "unexpected character {char}", ar: "رمز غير متوقع {char}" },
  "decode.hexEmpty": { en: "it is empty", ar: "القيمة فارغة" },
  "decode.copyHint": {
    en: "Copy the whole frame again: every line from the one starting with ! up to the next ! line, each quoted.",
    ar: "انسخ الإطار كاملاً مرة أخرى: كل الأسطر من السطر الذي يبدأ بـ ! حتى سطر ! التالي، كلٌ بين علامتي اقتباس.",
  },

  // --- dfu ----------------------------------------------------------------------------------
  "dfu.notAvailable": {
    en: "Firmware update over USB is not available: {reason}.",
    ar: "تحديث البرنامج الثابت عبر USB غير متاح: {reason}.",
  },
  "dfu.notAvailableHint": {
    en: "Run it on a laptop or charging rack with USB access (your user needs permission to open USB devices).",
    ar: "شغّله على حاسوب أو رف شحن يتيح الوصول إلى USB (يحتاج مستخدمك إلى إذن لفتح أجهزة USB).",
  },
  "dfu.reasonLoad": { en: "{module} could not be loaded ({detail})", ar: "تعذّر تحميل {module} ({detail})" },
  "dfu.noDevice": { en: "No device in DFU mode is connected to this machine.", ar: "لا يوجد جهاز في وضع DFU متصل بهذا الحاسوب." },
  "dfu.noDeviceHint": {
    en: "Hold the device's update button while plugging it in, then run the command again.",
    ar: "اضغط زر التحديث في الجهاز مع توصيله، ثم أعد تشغيل الأمر.",
  },
  "dfu.notFound": {
    en: "No device {device} is in DFU mode; found: {devices}.",
    ar: "لا يوجد جهاز {device} في وضع DFU؛ الموجود: {devices}.",
  },
  "dfu.severalDevices": {
    en: "{n} devices are in DFU mode: {devices}.",
    ar: "يوجد {n} من الأجهزة في وضع DFU: {devices}.",
  },
  "dfu.severalDevicesHint": { en: "Choose one with --device <serial>.", ar: "اختر جهازاً بالخيار --device <serial>." },
  "dfu.cannotReadImage": { en: "Cannot read the firmware image {file}: {detail}", ar: "تعذّرت قراءة صورة البرنامج الثابت {file}: {detail}" },
  "dfu.cannotReadImageHint": { en: "Check the path given to --image.", ar: "تحقق من المسار المعطى للخيار --image." },
  "dfu.progress": { en: "writing {bar} {percentage}% | {value}/{total} blocks | {eta}s left", ar: "كتابة {bar} {percentage}% | {value}/{total} كتلة | متبقٍ {eta} ث" },
  "dfu.done": {
    en: "Firmware written: {blocks} blocks in {seconds} s. The device restarts with the new firmware.",
    ar: "كُتب البرنامج الثابت: {blocks} كتلة في {seconds} ث. سيُعاد تشغيل الجهاز بالبرنامج الجديد.",
  },
  "dfu.cancelled": {
    en: "Firmware update cancelled; the device stays in its bootloader.",
    ar: "أُلغي تحديث البرنامج الثابت؛ يبقى الجهاز في محمّل الإقلاع.",
  },
  "dfu.cancelledHint": { en: "Run the same command again to write the image.", ar: "أعد تشغيل الأمر نفسه لكتابة الصورة." },
  "dfu.failed": { en: "Firmware update failed: {detail}", ar: "فشل تحديث البرنامج الثابت: {detail}" },
  "dfu.failedHint": {
    en: "The device keeps its bootloader; unplug it, plug it back in DFU mode and run the command again.",
    ar: "يحتفظ الجهاز بمحمّل الإقلاع؛ افصله ثم وصّله مجدداً في وضع DFU وأعد تشغيل الأمر.",
  },

  // --- upload -------------------------------------------------------------------------------
  "upload.cannotRead": { en: "Cannot read {file}: {detail}", ar: "تعذّرت قراءة {file}: {detail}" },
  "upload.cannotReadHint": { en: "Check the path of the file to send.", ar: "تحقق من مسار الملف المراد إرساله." },
  "upload.empty": { en: "{file} is empty: there is nothing to send.", ar: "الملف {file} فارغ: لا يوجد ما يُرسل." },
  "upload.tooLarge": {
    en: "{file} is {size}; one upload carries at most {max}.",
    ar: "حجم {file} هو {size}؛ والحد الأقصى للإرسال الواحد {max}.",
  },
  "upload.tooLargeHint": {
    en: "Check that this is the right file for --kind {kind}.",
    ar: "تحقق من أن هذا هو الملف الصحيح للنوع --kind {kind}.",
  },
  "upload.progress": {
    en: "uploading {bar} {percentage}% | {sent} of {size} | {eta}s left",
    ar: "إرسال {bar} {percentage}% | {sent} من {size} | متبقٍ {eta} ث",
  },
  "upload.progressLine": { en: "{device}: {percent}% ({sent} of {size})", ar: "{device}: {percent}% ({sent} من {size})" },
  "upload.done": {
    en: "{device} received {name} ({size}, {kind}) in {seconds} s: {chunks} chunks, {resumes} resumed.",
    ar: "استلم {device} الملف {name} ({size}، {kind}) خلال {seconds} ث: {chunks} جزءاً، واستُؤنف الإرسال {resumes} مرة.",
  },
  "upload.cancelled": {
    en: "Upload to {device} cancelled; the device keeps what it received.",
    ar: "أُلغي الإرسال إلى {device}؛ يحتفظ الجهاز بما استلمه.",
  },
  "upload.cancelledHint": {
    en: "Run the same command again to continue where it stopped.",
    ar: "أعد تشغيل الأمر نفسه للمتابعة من حيث توقف.",
  },
  "upload.lost": { en: "The agent ended the upload before it finished.", ar: "أنهى الوكيل عملية الإرسال قبل اكتمالها." },

  // --- errors -------------------------------------------------------------------------------
  "error.agentUnreachable": { en: "The agent at {url} is not reachable ({reason}).", ar: "تعذّر الوصول إلى الوكيل على {url} ({reason})." },
  "error.agentTimeout": { en: "no answer within {seconds} s", ar: "لا رد خلال {seconds} ث" },
  "hint.startAgent": {
    en: "Start it with: pollkit agent --config <file>, or point --agent (or POLLKIT_AGENT) at a running agent.",
    ar: "شغّله بالأمر: pollkit agent --config <file>، أو وجّه الخيار --agent (أو POLLKIT_AGENT) إلى وكيل يعمل.",
  },
  "error.notAnAgent": {
    en: "Something answers at {url} but it is not a pollkit agent ({detail}).",
    ar: "يوجد ما يجيب على {url} لكنه ليس وكيل pollkit ({detail}).",
  },
  "hint.checkAgentUrl": {
    en: "Check --agent or POLLKIT_AGENT; the agent prints its address when it starts.",
    ar: "تحقق من --agent أو POLLKIT_AGENT؛ يطبع الوكيل عنوانه عند بدء تشغيله.",
  },
  "error.unknownDevice": { en: "No device {device} is connected to the agent.", ar: "لا يوجد جهاز {device} متصل بالوكيل." },
  "hint.listDevices": { en: "List connected devices with: pollkit devices", ar: "اعرض الأجهزة المتصلة بالأمر: pollkit devices" },
  "error.noAnswer": { en: "{device} did not answer{detail}.", ar: "لم يستجب {device}{detail}." },
  "hint.checkLink": { en: "Check the cable or radio link, then try again.", ar: "تحقق من الكابل أو الاتصال اللاسلكي، ثم أعد المحاولة." },
  "error.deviceFailure": { en: "{device} reported a failure: {detail}", ar: "أبلغ {device} عن عطل: {detail}" },
  "error.notReady": { en: "{device} is connected but not ready yet ({detail}).", ar: "{device} متصل لكنه ليس جاهزاً بعد ({detail})." },
  "hint.retrySoon": { en: "Wait a few seconds and try again.", ar: "انتظر بضع ثوانٍ ثم أعد المحاولة." },
  "error.agentRefused": { en: "The agent refused the request (HTTP {status}): {detail}", ar: "رفض الوكيل الطلب (HTTP {status}): {detail}" },
  "hint.report": {
    en: "If this persists, report it with the agent's output and this command line.",
    ar: "إذا تكرر ذلك، أبلغ عنه مع مخرجات الوكيل وسطر الأوامر هذا.",
  },
  "error.unexpected": { en: "Unexpected error: {detail}", ar: "خطأ غير متوقع: {detail}" },

  // --- usage --------------------------------------------------------------------------------
  "usage.unknownCommand": { en: "Unknown command: {name}.", ar: "أمر غير معروف: {name}." },
  "usage.unknownOption": { en: "Unknown option: {name}.", ar: "خيار غير معروف: {name}." },
  "usage.missingArgument": { en: "Missing argument: {name}.", ar: "معامل ناقص: {name}." },
  "usage.missingOptionValue": { en: "Option {name} needs a value.", ar: "الخيار {name} يحتاج إلى قيمة." },
  "usage.missingMandatory": { en: "Option {name} is required.", ar: "الخيار {name} مطلوب." },
  "usage.excessArguments": { en: "Too many arguments.", ar: "عدد المعاملات أكثر من اللازم." },
  "usage.invalid": { en: "Invalid command line: {detail}", ar: "سطر أوامر غير صالح: {detail}" },
  "usage.badLang": { en: "--lang must be en or ar, not {value}.", ar: "يجب أن تكون قيمة --lang إما en أو ar، لا {value}." },
  "usage.badNumber": {
    en: "{option} must be a whole number from {min} to {max}, not {value}.",
    ar: "يجب أن تكون قيمة {option} عدداً صحيحاً من {min} إلى {max}، لا {value}.",
  },
  "usage.badKind": { en: "--kind must be one of {kinds}, not {value}.", ar: "يجب أن تكون قيمة --kind واحدة من {kinds}، لا {value}." },
  "usage.badUrl": { en: "--agent must be an http:// URL, not {value}.", ar: "يجب أن تكون قيمة --agent عنوان http://، لا {value}." },
  "hint.help": { en: "See: pollkit {command}--help", ar: "راجع: pollkit {command}--help" },

  // --- exit codes (one line each in --help) -------------------------------------------------
  "exit.ok": { en: "ok", ar: "نجاح" },
  "exit.error": { en: "error", ar: "خطأ" },
  "exit.usage": { en: "usage error (bad command line)", ar: "خطأ في الاستخدام (سطر أوامر غير صالح)" },
  "exit.agentUnreachable": { en: "agent not reachable", ar: "تعذّر الوصول إلى الوكيل" },
  "exit.unknownDevice": { en: "unknown device", ar: "جهاز غير معروف" },
  "exit.deviceFailure": { en: "the device reported a failure", ar: "أبلغ الجهاز عن عطل" },
  "exit.notAvailable": { en: "not available on this machine", ar: "غير متاح على هذا الحاسوب" },
  "exit.noAnswer": { en: "the device did not answer", ar: "لم يستجب الجهاز" },
} as const satisfies Record<string, Text>;

export type MessageKey = keyof typeof MESSAGES;
export type Params = Record<string, string | number>;

/**
 * Arabic names of schema enum values, keyed by the value's full name in protocol/pollkit.proto.
 * English names come from the schema itself (see enumLabel in format.ts); a value added to the
 * schema without an entry here shows its schema name.
 */
export const ENUM_LABELS_AR: Readonly<Record<string, string>> = {
  PERIPHERAL_UNSPECIFIED: "غير محدد",
  PERIPHERAL_SECURE_ELEMENT: "العنصر الآمن",
  PERIPHERAL_FLASH: "ذاكرة الفلاش",
  PERIPHERAL_CHARGER: "الشاحن",
  PERIPHERAL_FUEL_GAUGE: "مقياس البطارية",
  PERIPHERAL_FINGERPRINT: "قارئ البصمة",
  PERIPHERAL_CARD_READER: "قارئ البطاقة",
  PERIPHERAL_PRINTER: "الطابعة",
  PERIPHERAL_BALLOT_FEED: "مُلقّم أوراق الاقتراع",
  PERIPHERAL_DISPLAY: "الشاشة",
  VERDICT_UNKNOWN: "غير معروف",
  VERDICT_PASS: "ناجح",
  VERDICT_FAIL: "فاشل",
  VERDICT_ABSENT: "غير مركّب",
  CHARGE_STATE_UNKNOWN: "غير معروف",
  CHARGE_STATE_NOT_CHARGING: "لا يشحن",
  CHARGE_STATE_PRE_CHARGE: "شحن أولي",
  CHARGE_STATE_FAST_CHARGE: "شحن سريع",
  CHARGE_STATE_DONE: "اكتمل الشحن",
  CHARGE_STATE_NO_BATTERY: "لا توجد بطارية",
  CHARGE_MODE_UNSPECIFIED: "غير محدد",
  CHARGE_MODE_NORMAL: "عادي",
  CHARGE_MODE_STORAGE: "تخزين",
  CHARGE_MODE_MAINTAIN: "صيانة",
  REBOOT_REASON_UNKNOWN: "غير معروف",
  REBOOT_REASON_POWER_ON: "تشغيل الطاقة",
  REBOOT_REASON_WATCHDOG: "مؤقّت المراقبة",
  REBOOT_REASON_BROWN_OUT: "انخفاض الجهد",
  REBOOT_REASON_SOFTWARE: "برمجي",
  REBOOT_REASON_FIRMWARE_UPDATE: "تحديث البرنامج الثابت",
  REBOOT_REASON_PIN_RESET: "زر إعادة الضبط",
  REBOOT_REASON_LOW_BATTERY: "بطارية منخفضة",
  REBOOT_REASON_FAULT: "عطل في البرنامج",
  STATUS_OK: "تم",
  STATUS_ERROR: "خطأ",
  STATUS_DENIED: "مرفوض",
  STATUS_UNSUPPORTED: "غير مدعوم",
  STATUS_BAD_ARGUMENT: "معامل غير صالح",
  STATUS_BUSY: "مشغول",
  TRANSFER_KIND_UNSPECIFIED: "غير محدد",
  TRANSFER_KIND_FIRMWARE: "البرنامج الثابت",
  TRANSFER_KIND_STATION_DATA: "بيانات المركز",
  TRANSFER_KIND_ELECTION_DEFINITION: "تعريف الانتخابات",
  TRANSFER_KIND_CONFIGURATION: "الإعدادات",
};

let current: Lang = "en";

export function setLang(lang: Lang): void {
  current = lang;
}

export function currentLang(): Lang {
  return current;
}

export function parseLang(value: string): Lang | null {
  return value === "en" || value === "ar" ? value : null;
}

/** POSIX precedence: the first non-empty of LC_ALL, LC_MESSAGES, LANG decides. */
export function langFromEnv(env: NodeJS.ProcessEnv): Lang {
  const locale = env.LC_ALL || env.LC_MESSAGES || env.LANG || "";
  return locale.toLowerCase().startsWith("ar") ? "ar" : "en";
}

/** The text of `key` in `lang` (default: the language chosen for this run), placeholders filled. */
export function t(key: MessageKey, params: Params = {}, lang: Lang = current): string {
  const text: string = MESSAGES[key][lang];
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

/** Every message, for the catalogue's own tests. */
export function allMessages(): ReadonlyArray<[MessageKey, Text]> {
  return Object.entries(MESSAGES) as Array<[MessageKey, Text]>;
}

// --- exit codes ------------------------------------------------------------------------------

/** The CLI's exit codes: one table, also printed at the end of `pollkit --help`. */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  agentUnreachable: 3,
  unknownDevice: 4,
  deviceFailure: 5,
  notAvailable: 6,
  noAnswer: 7,
} as const;

export type ExitName = keyof typeof EXIT;
export type ExitCode = (typeof EXIT)[ExitName];

const EXIT_MEANING: Record<ExitName, MessageKey> = {
  ok: "exit.ok",
  error: "exit.error",
  usage: "exit.usage",
  agentUnreachable: "exit.agentUnreachable",
  unknownDevice: "exit.unknownDevice",
  deviceFailure: "exit.deviceFailure",
  notAvailable: "exit.notAvailable",
  noAnswer: "exit.noAnswer",
};

/** The exit-code table as text lines, e.g. "  3  agent not reachable". */
export function exitCodeLines(): string[] {
  return (Object.keys(EXIT) as ExitName[]).map((name) => `  ${EXIT[name]}  ${t(EXIT_MEANING[name])}`);
}

/** An expected failure: what went wrong and what to do next, already in the run's language. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = "CliError";
  }
}
