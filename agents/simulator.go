package agents

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hossagent/hossagent/db"
)

// SettingSimulatorSeed is the settings key of the prospect simulator's
// per-install seed.
const SettingSimulatorSeed = "simulator.seed"

// SettingSimulatorCursor is the settings key of the last contacted lead the
// simulator judged, "<contacted_at RFC 3339> <lead id>": every lead before
// it in the order of contact has had its answer.
const SettingSimulatorCursor = "simulator.cursor"

// SimulatorOptions configure the prospect simulator.
type SimulatorOptions struct {
	// ReplyShare is the share of contacted leads that reply; 0 means 0.3.
	ReplyShare float64
	// MinDelay is how long after contact a reply may come; 0 means 2 min.
	MinDelay time.Duration
	// MaxPerCycle bounds the replies per run; 0 means 10.
	MaxPerCycle int
	// Replies, when set, is the sorting path the simulated replies take,
	// as real ones do: each is a message of one class (interested, not
	// now, not interested, out of office, unsubscribe, a bounce, other),
	// sorted and acted on. Nil stores every reply as an answer (responded).
	Replies *RepliesCycle
}

// ProspectSimulator stands in for prospects in development, with synthetic
// leads and DRY_RUN mail only (main decides when to run it): a share of the
// contacted leads reply after a delay, so that onboarding has work. Every
// reply it writes is stored as simulated and says so in its body.
//
// Whether a lead replies is a pure function of the lead id and a seed drawn
// once per install, so a lead judged "no reply" gets the same answer on
// every later run. The simulator keeps a cursor in the order of contact and
// starts each run after the last lead it judged: a run reads the leads
// contacted since, not every contacted lead that never replied (most of
// them, after a while), so its cost follows the new contacts, not the table.
type ProspectSimulator struct {
	store *db.DB
	env   Env
	opts  SimulatorOptions
}

// NewProspectSimulator builds the prospect simulator.
func NewProspectSimulator(store *db.DB, env Env, opts SimulatorOptions) *ProspectSimulator {
	if opts.ReplyShare <= 0 {
		opts.ReplyShare = 0.3
	}
	opts.ReplyShare = min(opts.ReplyShare, 1)
	if opts.MinDelay <= 0 {
		opts.MinDelay = 2 * time.Minute
	}
	if opts.MaxPerCycle <= 0 {
		opts.MaxPerCycle = 10
	}
	return &ProspectSimulator{store: store, env: env, opts: opts}
}

// simulatorPage is how many contacted leads one query reads.
const simulatorPage = 200

// Run writes simulated replies for the contacted leads, past the delay and
// without a reply, that are due to reply. Counts: replied.
func (s *ProspectSimulator) Run(ctx context.Context) (_ Counts, err error) {
	counts := Counts{"replied": 0}
	seed, err := s.store.SettingOrInit(ctx, SettingSimulatorSeed, func() (string, error) {
		if s.env.Random == nil {
			return "", errors.New("no random source to draw the simulator seed from")
		}
		b := make([]byte, 16)
		if _, err := io.ReadFull(s.env.Random, b); err != nil {
			return "", fmt.Errorf("unable to draw the simulator seed: %w", err)
		}
		return hex.EncodeToString(b), nil
	})
	if err != nil {
		return counts, fmt.Errorf("simulator: %w", err)
	}
	defer func() {
		if counts["replied"] > 0 {
			publishOutreachChange(s.env, "prospect_simulator", "leads", counts)
		}
	}()
	start, err := s.cursor(ctx)
	if err != nil {
		return counts, fmt.Errorf("simulator: %w", err)
	}
	cutoff := s.env.Now().Add(-s.opts.MinDelay)
	after := start
	// The cursor is saved only over leads judged (and answered when due),
	// so a run that stops early, at its cap or on an error, leaves the rest
	// to the next one. Judging a lead twice is harmless: the verdict is the
	// same and RecordReply stores one simulated reply per lead at most.
	defer func() {
		if after != start {
			if serr := s.saveCursor(context.WithoutCancel(ctx), after); serr != nil && err == nil {
				err = fmt.Errorf("simulator: %w", serr)
			}
		}
	}()
	for counts["replied"] < s.opts.MaxPerCycle {
		leads, err := s.store.ContactedAfter(ctx, cutoff, after, simulatorPage)
		if err != nil {
			return counts, fmt.Errorf("simulator: %w", err)
		}
		if len(leads) == 0 {
			return counts, nil
		}
		for i := range leads {
			if !SimulatedReplyDue(seed, leads[i].ID, s.opts.ReplyShare) {
				after = leadCursor(&leads[i])
				continue
			}
			ok, err := s.reply(ctx, &leads[i])
			if err != nil {
				return counts, fmt.Errorf("simulator: %w", err)
			}
			after = leadCursor(&leads[i])
			if ok {
				counts["replied"]++
			}
			if counts["replied"] >= s.opts.MaxPerCycle {
				break
			}
		}
	}
	return counts, nil
}

func leadCursor(l *db.Lead) db.LeadCursor {
	c := db.LeadCursor{ID: l.ID}
	if l.ContactedAt != nil {
		c.ContactedAt = *l.ContactedAt
	}
	return c
}

// cursor reads the saved cursor; none (or one this version cannot read)
// starts from the first contacted lead.
func (s *ProspectSimulator) cursor(ctx context.Context) (db.LeadCursor, error) {
	v, err := s.store.Setting(ctx, SettingSimulatorCursor, "")
	if err != nil || v == "" {
		return db.LeadCursor{}, err
	}
	at, id, ok := strings.Cut(v, " ")
	t, terr := time.Parse(time.RFC3339Nano, at)
	n, nerr := strconv.ParseInt(id, 10, 64)
	if !ok || terr != nil || nerr != nil {
		return db.LeadCursor{}, nil
	}
	return db.LeadCursor{ContactedAt: t, ID: n}, nil
}

func (s *ProspectSimulator) saveCursor(ctx context.Context, c db.LeadCursor) error {
	return s.store.SetSetting(ctx, SettingSimulatorCursor, c.ContactedAt.UTC().Format(time.RFC3339Nano)+" "+strconv.FormatInt(c.ID, 10))
}

// SimulatedReplyDue reports whether the lead replies under seed: the first
// 53 bits of HMAC-SHA256(seed, lead id), read as a fraction of one, fall
// below share.
func SimulatedReplyDue(seed string, leadID int64, share float64) bool {
	h := hmac.New(sha256.New, []byte(seed))
	h.Write([]byte("hossagent/simulator/lead\x00" + strconv.FormatInt(leadID, 10)))
	u := binary.BigEndian.Uint64(h.Sum(nil)[:8]) >> 11
	return float64(u)/(1<<53) < share
}

var simulatedReplyBodies = []string{
	"Hi,\n\nThanks for getting in touch. This sounds relevant for us right now. Could you send over some details on how you would start and what it costs?\n\nBest regards",
	"Hello,\n\nTiming is good: we have a project where this could help. Happy to talk this week. What do you need from us to get going?\n\nThanks",
	"Hi there,\n\nInteresting. We have been meaning to get some research done for a while. Let's try one piece and see how it goes.\n\nCheers",
}

// reply stores one simulated reply and moves the lead to responded, in one
// transaction; it reports false when the lead moved on meanwhile.
func (s *ProspectSimulator) reply(ctx context.Context, l *db.Lead) (bool, error) {
	subject, err := s.store.LastSubject(ctx, l.ID)
	if err != nil {
		return false, err
	}
	from := l.EmailAddr()
	if from == "" {
		from = "prospect@simulated.example"
	}
	if s.opts.Replies != nil {
		raw := simulatedMessage(l, from, subject, s.env.Now(), s.env.Rand)
		outcome, err := s.opts.Replies.Apply(ctx, raw, true)
		return outcome == repliesStored, err
	}
	body := "[SIMULATED REPLY] Written by HossAgent's prospect simulator, not by a real person.\n\n" +
		simulatedReplyBodies[s.env.Rand.IntN(len(simulatedReplyBodies))]
	return s.store.RecordReply(ctx, db.NewReply{
		LeadID: l.ID, FromAddr: from, Subject: "Re: " + nonEmptyOr(subject, "your e-mail"), Body: body, Simulated: true,
	})
}
