package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/protocols"
)

// The pages' message catalogue: every string a page shows, in English and Simplified Chinese.
// Keys are identifiers so templates can write {{.T.key}}. Texts with a %s are filled in by
// the handler (trf), never by templates. TestCatalogueComplete checks both languages have every
// key and the same verbs.
var catalogue = map[string]map[string]string{
	protocols.EN: {
		"app_name":           "Photo follow-up",
		"photos_for":         "Photos for %s",
		"language":           "Language",
		"now_heading":        "What to do now",
		"due_by":             "Please send by %s",
		"overdue_by":         "These were due by %s. Please send them as soon as you can.",
		"next_heading":       "Next photos",
		"next_on":            "Your next photos are due on %s.",
		"all_done":           "All the photos are done. Thank you!",
		"step_done":          "Thank you: every photo of this step has arrived.",
		"aftercare":          "Care for now",
		"take_photos":        "Take the photos",
		"guide":              "Use soft daylight without flash, clean skin without cream, and the same distance and angle as last time.",
		"take_photo":         "Take photo",
		"choose_photo":       "Choose from gallery",
		"send":               "Send photo",
		"last_time":          "Last time: match this framing",
		"received":           "Received",
		"sending":            "Sending…",
		"retrying":           "Connection lost. Trying again…",
		"failed_network":     "The photo could not be sent. Check the connection and tap Try again.",
		"retry":              "Try again",
		"sent":               "Sent. Thank you!",
		"preparing":          "Preparing the preview…",
		"err_too_large":      "This photo is too large. Please send the photo straight from the phone camera.",
		"err_invalid":        "This step does not take this photo. Please reload the page.",
		"err_ended":          "This follow-up has ended; the clinic no longer takes photos for it.",
		"err_session":        "Your session has ended. Please open the link from the clinic again.",
		"err_generic":        "Something went wrong. Please try again in a moment.",
		"err_busy":           "Too many photos are being sent at once. Please wait a moment and send this one again.",
		"err_quota":          "This link cannot take more photos now. Please wait a minute, or contact the clinic.",
		"err_forbidden":      "The page is out of date. Please reload it and send the photo again.",
		"steps":              "Your follow-up steps",
		"state_upcoming":     "Coming up",
		"state_open":         "Due now",
		"state_overdue":      "Late: please send",
		"state_missed":       "Missed",
		"state_late":         "Not received",
		"state_complete":     "Done",
		"clinic_takes":       "Taken at the clinic",
		"messages":           "Messages from the clinic",
		"retake":             "Please take this photo again",
		"note":               "Note from the clinic",
		"for_step":           "Step: %s",
		"contact":            "Contact the clinic",
		"call":               "Call",
		"email":              "Email",
		"worried":            "If you are worried at any time, do not wait for the next photo: call the clinic.",
		"invalid_title":      "This link does not open",
		"invalid_body":       "The link may have expired or been replaced. Please contact your clinic for a new link.",
		"too_many":           "Too many tries from this connection. Please wait a few minutes and try again.",
		"about":              "About this follow-up",
		"treated_on":         "Treatment on %s",
		"upload_progress":    "Upload progress",
		"flash_sent":         "Photo received. Thank you!",
		"photo_of":           "%s photo",
		"previous_alt":       "Your previous %s photo",
		"uploaded_alt":       "The %s photo you sent",
		"skip":               "Skip to what to do now",
		"switch_to":          "中文",
		"switch_to_lang":     "zh-CN",
		"switch_to_label":    "切换到中文",
		"no_step_just_now":   "Nothing to do just now.",
		"live_guide":         "Use live camera with guide",
		"live_camera":        "Use live camera",
		"capture_title":      "Live camera",
		"capture_hint":       "Line up the picture with last time's photo, then tap Take the photo.",
		"guide_opacity":      "How visible last time's photo is",
		"shutter":            "Take the photo",
		"advice_blurry":      "The photo looks blurry. Hold the phone steady and try again?",
		"advice_dark":        "The photo looks too dark. Find more light and try again?",
		"advice_overexposed": "The photo looks too bright. Turn the flash off or move out of direct light, and try again?",
		"advice_framing":     "This photo looks framed differently from the last one. Show the same area from the same distance?",
		"send_anyway":        "Send anyway",
		"take_again":         "Take again",
		"cancel":             "Cancel",
		"camera_starting":    "Starting the camera…",
		"camera_failed":      "The camera could not be opened here. Please use Take photo instead.",
		"queued":             "Waiting to be sent…",
		"waiting":            "Waiting for a connection: the photo is sent as soon as the phone is online again.",
		"keep_open":          "Keep this page open until the photo is sent: this browser cannot keep it if the page closes.",
		"progress_of":        "%s of %s MB received",
		"left_soon":          "less than a minute left",
		"left_minutes":       "about %s min left",
		"err_refused":        "This photo cannot be taken. Please take it again with the phone camera.",
		"err_locked":         "This photo is still being received from an earlier try. Please wait a moment.",
	},
	protocols.ZH: {
		"app_name":           "照片随访",
		"photos_for":         "%s的随访照片",
		"language":           "语言",
		"now_heading":        "现在要做的事",
		"due_by":             "请在%s前发送",
		"overdue_by":         "这组照片原定在%s前发送，请尽快发送。",
		"next_heading":       "下一次拍照",
		"next_on":            "下一次拍照时间是%s。",
		"all_done":           "所有照片都已完成，谢谢！",
		"step_done":          "谢谢，这一步的照片都已收到。",
		"aftercare":          "护理须知",
		"take_photos":        "拍照",
		"guide":              "在柔和的自然光下拍，不开闪光灯；皮肤清洁、不涂药膏；距离和角度与上次相同。",
		"take_photo":         "拍照",
		"choose_photo":       "从相册选择",
		"send":               "发送照片",
		"last_time":          "上次的照片：请按同样的构图拍",
		"received":           "已收到",
		"sending":            "正在发送…",
		"retrying":           "网络中断，正在重试…",
		"failed_network":     "照片没有发出去。请检查网络后点“重试”。",
		"retry":              "重试",
		"sent":               "已发送，谢谢！",
		"preparing":          "正在生成预览…",
		"err_too_large":      "照片太大。请直接发送手机相机拍摄的照片。",
		"err_invalid":        "这一步不需要这张照片。请刷新页面。",
		"err_ended":          "本次随访已结束，诊所不再接收照片。",
		"err_session":        "会话已结束。请重新打开诊所发给您的链接。",
		"err_generic":        "出了点问题，请稍后再试。",
		"err_busy":           "同时发送的照片太多。请稍等片刻，再发送这张照片。",
		"err_quota":          "此链接现在不能再接收照片。请稍等一分钟，或联系诊所。",
		"err_forbidden":      "页面已过期。请刷新页面后重新发送照片。",
		"steps":              "随访步骤",
		"state_upcoming":     "即将开始",
		"state_open":         "现在拍",
		"state_overdue":      "已逾期，请尽快发送",
		"state_missed":       "已错过",
		"state_late":         "未收到",
		"state_complete":     "已完成",
		"clinic_takes":       "在诊所拍摄",
		"messages":           "诊所留言",
		"retake":             "请重拍这张照片",
		"note":               "诊所留言",
		"for_step":           "对应步骤：%s",
		"contact":            "联系诊所",
		"call":               "电话",
		"email":              "邮件",
		"worried":            "任何时候只要您担心，不用等到下一次拍照，直接联系诊所。",
		"invalid_title":      "此链接无法打开",
		"invalid_body":       "链接可能已过期或已更换。请联系您的诊所获取新的链接。",
		"too_many":           "尝试次数过多，请等几分钟再试。",
		"about":              "关于本次随访",
		"treated_on":         "治疗日期：%s",
		"upload_progress":    "上传进度",
		"flash_sent":         "照片已收到，谢谢！",
		"photo_of":           "%s照片",
		"previous_alt":       "您上次拍的%s照片",
		"uploaded_alt":       "您发送的%s照片",
		"skip":               "跳到现在要做的事",
		"switch_to":          "English",
		"switch_to_lang":     "en",
		"switch_to_label":    "Switch to English",
		"no_step_just_now":   "现在没有需要做的事。",
		"live_guide":         "使用实时相机（带取景参考）",
		"live_camera":        "使用实时相机",
		"capture_title":      "实时相机",
		"capture_hint":       "请将画面与上次的照片对齐，然后点“拍下这张照片”。",
		"guide_opacity":      "上次照片的显示深浅",
		"shutter":            "拍下这张照片",
		"advice_blurry":      "照片看起来有些模糊。请拿稳手机，再拍一次好吗？",
		"advice_dark":        "照片看起来太暗。请到光线更好的地方，再拍一次好吗？",
		"advice_overexposed": "照片看起来太亮。请关闭闪光灯或避开强光，再拍一次好吗？",
		"advice_framing":     "这张照片的取景和上一张不太一样。请从相同距离拍摄同一部位好吗？",
		"send_anyway":        "仍然发送",
		"take_again":         "重新拍摄",
		"cancel":             "取消",
		"camera_starting":    "正在打开相机…",
		"camera_failed":      "无法在此打开相机。请改用“拍照”按钮。",
		"queued":             "等待发送…",
		"waiting":            "正在等待网络连接：手机恢复联网后会立即发送这张照片。",
		"keep_open":          "请保持此页面打开，直到照片发送完成：页面关闭后，此浏览器无法保留照片。",
		"progress_of":        "已收到 %s / %s MB",
		"left_soon":          "不到一分钟",
		"left_minutes":       "还需约 %s 分钟",
		"err_refused":        "无法接收这张照片。请用手机相机重新拍摄。",
		"err_locked":         "这张照片的上一次发送还在接收中，请稍候。",
	},
}

// pageLang normalises a language tag to one the catalogue has ("" when it has none).
func pageLang(tag string) string {
	tag = strings.ToLower(strings.TrimSpace(tag))
	switch {
	case strings.HasPrefix(tag, "zh"):
		return protocols.ZH
	case strings.HasPrefix(tag, "en"):
		return protocols.EN
	}
	return ""
}

// tr returns the text of key in lang, falling back to English.
func tr(lang, key string) string {
	if s, ok := catalogue[lang][key]; ok {
		return s
	}
	return catalogue[protocols.EN][key]
}

// trf fills a catalogue text's %s verbs.
func trf(lang, key string, args ...any) string { return fmt.Sprintf(tr(lang, key), args...) }

// langCookie remembers the language switch of the pages.
const langCookie = "df_lang"

// chooseLang picks the page language: the switch on the page (?lang=, remembered in a
// cookie), then the patient's preferred language (preferred, "" when not known), then the
// browser's Accept-Language, then English.
func chooseLang(c echo.Context, preferred string) string {
	if l := pageLang(c.QueryParam("lang")); l != "" {
		return l
	}
	if ck, err := c.Cookie(langCookie); err == nil {
		if l := pageLang(ck.Value); l != "" {
			return l
		}
	}
	if l := pageLang(preferred); l != "" {
		return l
	}
	return requestLang(c)
}

// rememberLang keeps a ?lang= switch for the next pages. The cookie holds no personal data.
func (s *Server) rememberLang(c echo.Context) {
	l := pageLang(c.QueryParam("lang"))
	if l == "" {
		return
	}
	c.SetCookie(&http.Cookie{Name: langCookie, Value: l, Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: s.cfg.Secure, SameSite: http.SameSiteLaxMode})
}

var zhWeekdays = [...]string{"周日", "周一", "周二", "周三", "周四", "周五", "周六"}

// formatDay writes a day the way the language does: "Tue 24 Nov" or "11月24日 周二".
func formatDay(t time.Time, lang string) string {
	if lang == protocols.ZH {
		return fmt.Sprintf("%d月%d日 %s", int(t.Month()), t.Day(), zhWeekdays[t.Weekday()])
	}
	return t.Format("Mon 2 Jan")
}

// formatDate writes a calendar date (already in the clinic's zone) like formatDay.
func formatDate(d protocols.Date, lang string) string {
	return formatDay(time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC), lang)
}
