package notify

import (
	"bytes"
	htmltemplate "html/template"
	texttemplate "text/template"
)

// text is one language's wording. The wording names no condition, treatment or child: a
// phone's lock screen or a shared mailbox may show it to anyone.
type text struct {
	Subject, SubjectClosing string
	Due, Closing, Manual    string // Printf-like: {{.DueOn}}, {{.LastDay}}
	Action, Private, Footer string
	Button                  string
	// The clinic has answered (KindAnswered): that there is something to read, never what.
	SubjectAnswered, Answered, ActionAnswered, ButtonAnswered string
}

var texts = map[string]text{
	"en": {
		Subject:        "A follow-up photo is due",
		SubjectClosing: "Reminder: the follow-up photo is still missing",
		Due:            "A follow-up photo is due on {{.DueOn}}.",
		Closing:        "The follow-up photo has not arrived yet. The last day to send it is {{.LastDay}}.",
		Manual:         "Your clinic asks you to send the follow-up photo due on {{.DueOn}}.",
		Action:         "Please take it and send it with this link:",
		Button:         "Open the photo page",
		Private:        "This link is personal: please do not share it.",
		Footer:         "If you have questions, please contact your clinic. This message was sent automatically.",

		SubjectAnswered: "Your clinic has answered",
		Answered:        "Your clinic has answered on your follow-up page.",
		ActionAnswered:  "Please open your page with this link to read it:",
		ButtonAnswered:  "Open my follow-up page",
	},
	"zh-CN": {
		Subject:        "请上传随访照片",
		SubjectClosing: "提醒：随访照片尚未收到",
		Due:            "您有一组随访照片应在 {{.DueOn}} 拍摄上传。",
		Closing:        "我们还没有收到随访照片。最晚上传日期是 {{.LastDay}}。",
		Manual:         "诊所请您上传应在 {{.DueOn}} 拍摄的随访照片。",
		Action:         "请拍照后通过以下链接上传：",
		Button:         "打开拍照上传页面",
		Private:        "此链接仅供您个人使用，请勿转发。",
		Footer:         "如有疑问，请联系您的诊所。此消息由系统自动发送。",

		SubjectAnswered: "诊所已回复您",
		Answered:        "诊所已在您的随访页面上回复。",
		ActionAnswered:  "请通过以下链接打开页面查看：",
		ButtonAnswered:  "打开我的随访页面",
	},
}

// clinicText is the notice to a clinic's inbox of a new family message (KindFamilyMessage),
// in both languages, since a clinic has no language of its own: that a family wrote, and the
// procedure page's link, never the message or the patient.
var clinicText = text{
	Subject: "New message from a family / 家属新留言",
	Due:     "A family has written about a follow-up. / 有家属就一项随访留言。",
	Action:  "Open the procedure to read and answer it: / 打开随访页面查看并回复：",
	Button:  "Open the procedure / 打开随访",
	Private: "The message is not in this email: it stays in Dermfollow. / 留言内容不在此邮件中，仅保存在 Dermfollow。",
	Footer:  "Sent automatically, at most once per follow-up every 15 minutes. / 系统自动发送，每项随访每 15 分钟最多一封。",
}

func textFor(lang string) text {
	if t, ok := texts[lang]; ok {
		return t
	}
	return texts["en"]
}

var (
	textBody = texttemplate.Must(texttemplate.New("text").Parse(`{{.Lead}}

{{.Action}}

{{.M.Link}}

{{.T.Private}}

{{.T.Footer}}
`))
	htmlBody = htmltemplate.Must(htmltemplate.New("html").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="font-family: sans-serif; line-height: 1.5; max-width: 36em;">
<p>{{.Lead}}</p>
<p>{{.Action}}</p>
<p><a href="{{.M.Link}}" style="display: inline-block; padding: 0.6em 1.2em; background: #0b5cad; color: #fff; text-decoration: none; border-radius: 4px;">{{.Button}}</a></p>
<p style="word-break: break-all;"><a href="{{.M.Link}}">{{.M.Link}}</a></p>
<p>{{.T.Private}}</p>
<p style="color: #555;">{{.T.Footer}}</p>
</body></html>
`))
)

// rendered is a message in its language: the subject, one lead sentence, what to do, and both
// bodies.
type rendered struct {
	Subject, Lead, Action, Text, HTML string
}

func render(m Message) (rendered, error) {
	t := textFor(m.Language)
	lang := m.Language
	if _, ok := texts[lang]; !ok {
		lang = "en"
	}
	if m.Kind == KindFamilyMessage {
		t, lang = clinicText, "en"
	}
	r := rendered{Subject: t.Subject, Action: t.Action}
	lead, button := t.Due, t.Button
	switch m.Kind {
	case KindClosingSoon:
		r.Subject, lead = t.SubjectClosing, t.Closing
	case KindManual:
		lead = t.Manual
	case KindAnswered:
		r.Subject, lead, r.Action, button = t.SubjectAnswered, t.Answered, t.ActionAnswered, t.ButtonAnswered
	}
	var b bytes.Buffer
	if err := texttemplate.Must(texttemplate.New("lead").Parse(lead)).Execute(&b, m); err != nil {
		return rendered{}, err
	}
	r.Lead = b.String()
	data := map[string]any{"T": t, "M": m, "Lead": r.Lead, "Action": r.Action, "Button": button, "Subject": r.Subject, "Lang": lang}
	b.Reset()
	if err := textBody.Execute(&b, data); err != nil {
		return rendered{}, err
	}
	r.Text = b.String()
	b.Reset()
	if err := htmlBody.Execute(&b, data); err != nil {
		return rendered{}, err
	}
	r.HTML = b.String()
	return r, nil
}

// Text returns the short plain text of a message (subject, lead and link), as an SMS gateway
// would send it.
func Text(m Message) string {
	r, err := render(m)
	if err != nil {
		return m.Link
	}
	return r.Lead + " " + r.Action + " " + m.Link
}
