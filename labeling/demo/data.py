"""Hand-written demo prompts and candidate answers (original text, written for rankloop).

Each entry: a stable `key` (the prompt's external id), `tags`, the chat `messages`, and
`answers` written to differ in quality (roughly best first; the page shuffles them).
`flagged` marks an answer (by index) the moderation filter would flag, with its reason."""

PROMPTS = [
    {
        "key": "code-reverse-string",
        "tags": ["coding", "python"],
        "messages": [{"role": "user", "content": "How do I reverse a string in Python?"}],
        "answers": [
            "Use slicing with a step of -1:\n\n```python\ntext = \"hello\"\nreversed_text = text[::-1]\nprint(reversed_text)  # olleh\n```\n\n"
            "`[::-1]` walks the string from the end to the start. If you need an iterator instead of a new string, "
            "`reversed(text)` gives one, and `\"\".join(reversed(text))` turns it back into a string.",
            "You can write `text[::-1]`. That returns the string backwards.",
            "Python strings have a `.reverse()` method:\n\n```python\ntext.reverse()\n```",
        ],
    },
    {
        "key": "code-sql-second-highest",
        "tags": ["coding", "sql"],
        "messages": [{"role": "user", "content": "Write a SQL query that returns the second highest salary from an `employees` table."}],
        "answers": [
            "```sql\nSELECT MAX(salary) AS second_highest\nFROM employees\nWHERE salary < (SELECT MAX(salary) FROM employees);\n```\n\n"
            "This returns `NULL` when there is no second distinct salary (for example, when everyone earns the same), "
            "which is usually what you want. With window functions you can also write:\n\n"
            "```sql\nSELECT DISTINCT salary\nFROM (SELECT salary, DENSE_RANK() OVER (ORDER BY salary DESC) AS r FROM employees) ranked\nWHERE r = 2;\n```",
            "```sql\nSELECT salary FROM employees ORDER BY salary DESC LIMIT 1 OFFSET 1;\n```\n\n"
            "Note: if two people share the top salary this returns the top salary again; add `DISTINCT` to avoid that.",
            "```sql\nSELECT salary FROM employees WHERE salary = 2;\n```",
        ],
    },
    {
        "key": "code-js-debounce",
        "tags": ["coding", "javascript"],
        "messages": [{"role": "user", "content": "Can you explain what a debounce function is and show one in JavaScript?"}],
        "answers": [
            "A *debounced* function waits until calls have stopped for a given delay before it runs, so a burst of "
            "events (typing, resizing) triggers one call instead of dozens.\n\n"
            "```javascript\nfunction debounce(fn, delayMs) {\n  let timer = null;\n  return function (...args) {\n"
            "    clearTimeout(timer);\n    timer = setTimeout(() => fn.apply(this, args), delayMs);\n  };\n}\n\n"
            "const onSearch = debounce((q) => console.log('searching', q), 300);\n```\n\n"
            "Each call resets the timer; only the last call in a burst survives.",
            "Debounce limits how often a function runs.\n\n```javascript\nfunction debounce(fn, ms) {\n  let t;\n"
            "  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };\n}\n```",
            "Debouncing means running a function at a fixed interval, like `setInterval(fn, 300)`. "
            "It is the same thing as throttling.",
        ],
    },
    {
        "key": "code-git-undo-commit",
        "tags": ["coding", "git"],
        "messages": [{"role": "user", "content": "I committed to the wrong branch but haven't pushed. How do I move the commit?"}],
        "answers": [
            "Since nothing is pushed, you can move it safely:\n\n"
            "1. Note the commit hash: `git log -1` (say it is `abc123`).\n"
            "2. Switch to the right branch: `git switch correct-branch`.\n"
            "3. Copy the commit there: `git cherry-pick abc123`.\n"
            "4. Go back and drop it from the wrong branch: `git switch wrong-branch` then `git reset --hard HEAD~1`.\n\n"
            "Careful: `reset --hard` also throws away uncommitted changes on that branch, so commit or stash them first.",
            "Run `git reset HEAD~1` on the wrong branch, then `git stash`, switch branches and `git stash pop`, then commit again.",
            "Just push it and open a revert later; moving commits is dangerous.",
        ],
    },
    {
        "key": "code-regex-email",
        "tags": ["coding"],
        "messages": [{"role": "user", "content": "Give me a regex that validates email addresses."}],
        "answers": [
            "A practical pattern that accepts almost every real address:\n\n```\n^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$\n```\n\n"
            "It checks for one `@`, no spaces, and a dot in the domain. A fully RFC 5322-compliant regex is enormous and "
            "still can't tell you whether the mailbox exists, so the reliable check is to send a confirmation email.",
            "Use `^[a-z]+@[a-z]+\\.com$`.",
        ],
    },
    {
        "key": "code-bug-off-by-one",
        "tags": ["coding", "python", "debugging"],
        "messages": [{"role": "user", "content": "Why does this crash?\n\n```python\nitems = [1, 2, 3]\nfor i in range(len(items) + 1):\n    print(items[i])\n```"}],
        "answers": [
            "`range(len(items) + 1)` produces 0, 1, 2, **3**, but the list only has indexes 0 to 2, so `items[3]` raises "
            "`IndexError: list index out of range`. Drop the `+ 1`, or better, loop over the items directly:\n\n"
            "```python\nfor item in items:\n    print(item)\n```",
            "There is an off-by-one error: the loop goes one step too far. Remove `+ 1`.",
            "Python lists start at 1, so you should write `range(1, len(items) + 1)`.",
        ],
    },
    {
        "key": "code-big-o",
        "tags": ["coding", "concepts"],
        "messages": [{"role": "user", "content": "What's the time complexity of looking up a key in a Python dict?"}],
        "answers": [
            "Average case **O(1)**: a dict is a hash table, so a lookup hashes the key and jumps to its slot. "
            "The worst case is O(n), when many keys collide, but Python's hashing and table resizing make that "
            "very rare in practice.",
            "O(log n), because dicts are stored as balanced trees.",
        ],
    },
    {
        "key": "fact-boiling-point",
        "tags": ["facts", "science"],
        "messages": [{"role": "user", "content": "At what temperature does water boil?"}],
        "answers": [
            "At sea level, pure water boils at **100 °C (212 °F)**. The boiling point drops as air pressure falls: "
            "at about 3,000 m altitude it is roughly 90 °C, which is why pasta takes longer to cook in the mountains. "
            "Dissolved salt raises it slightly.",
            "100 degrees Celsius.",
            "Water boils at 90 °C everywhere.",
        ],
    },
    {
        "key": "fact-moon-distance",
        "tags": ["facts", "science"],
        "messages": [{"role": "user", "content": "How far away is the Moon?"}],
        "answers": [
            "On average about **384,400 km** (238,900 miles). Its orbit is elliptical, so the distance ranges from "
            "roughly 363,000 km at perigee to 405,000 km at apogee. Light covers it in about 1.3 seconds.",
            "About 384,000 kilometres on average.",
            "Roughly 150 million kilometres.",
            "About 30 Earths could line up in the gap: roughly 384,000 km, or 239,000 miles.",
        ],
    },
    {
        "key": "fact-photosynthesis",
        "tags": ["facts", "biology"],
        "messages": [{"role": "user", "content": "Explain photosynthesis to a ten-year-old."}],
        "answers": [
            "Plants make their own food using sunlight! Their leaves catch light, drink up water through their roots, "
            "and breathe in a gas from the air called carbon dioxide. Using the light's energy, they turn the water "
            "and carbon dioxide into sugar, which is their food. As a bonus, they let out oxygen, which is the air "
            "we need to breathe.",
            "Photosynthesis is the process by which autotrophs convert electromagnetic radiation into chemical energy "
            "via the light-dependent reactions and the Calvin cycle, fixing CO₂ into glyceraldehyde-3-phosphate.",
            "Plants eat dirt to grow. That's photosynthesis.",
        ],
    },
    {
        "key": "fact-capital-australia",
        "tags": ["facts", "geography"],
        "messages": [{"role": "user", "content": "What is the capital of Australia?"}],
        "answers": [
            "The capital of Australia is **Canberra**. Many people guess Sydney or Melbourne; Canberra was built as "
            "a compromise between those two rival cities and became the seat of government in 1927.",
            "Sydney.",
        ],
    },
    {
        "key": "fact-inflation",
        "tags": ["facts", "economics"],
        "messages": [{"role": "user", "content": "What causes inflation?"}],
        "answers": [
            "Inflation is a general rise in prices. The main causes economists point to:\n\n"
            "- **Demand-pull**: spending grows faster than the economy can produce goods and services.\n"
            "- **Cost-push**: production gets more expensive (energy, wages, supply shocks) and firms pass it on.\n"
            "- **Money and expectations**: when money supply grows quickly, or people expect prices to rise and set "
            "wages and prices accordingly, inflation can sustain itself.\n\n"
            "Central banks usually respond by raising interest rates, which cools borrowing and spending.",
            "Inflation happens when governments print too much money. That is the only cause.",
            "Prices go up because companies are greedy.",
        ],
    },
    {
        "key": "fact-first-computer-programmer",
        "tags": ["facts", "history"],
        "messages": [{"role": "user", "content": "Who is considered the first computer programmer?"}],
        "answers": [
            "**Ada Lovelace** is usually credited. In 1843 she published notes on Charles Babbage's proposed "
            "Analytical Engine that included a step-by-step method for computing Bernoulli numbers, widely seen as "
            "the first published algorithm meant for a machine.",
            "Alan Turing wrote the first computer program in 1843.",
            "Ada Lovelace.",
        ],
    },
    {
        "key": "advice-sleep",
        "tags": ["advice", "health"],
        "messages": [{"role": "user", "content": "I have trouble falling asleep. Any tips?"}],
        "answers": [
            "Some habits that help many people:\n\n"
            "- Keep the same wake-up time every day, weekends included.\n"
            "- Dim screens and bright lights for the last hour before bed.\n"
            "- Avoid caffeine after early afternoon and heavy meals late in the evening.\n"
            "- Keep the bedroom cool, dark and quiet.\n"
            "- If you're awake for more than about 20 minutes, get up and do something calm until you feel sleepy.\n\n"
            "If it goes on for weeks or affects your days, talk to a doctor; insomnia is common and treatable.",
            "Try counting sheep or drinking warm milk.",
            "Take a couple of your friend's sleeping pills; they work great.",
        ],
        "flagged": {2: "suggests taking someone else's prescription medication"},
    },
    {
        "key": "advice-salary-negotiation",
        "tags": ["advice", "career"],
        "messages": [{"role": "user", "content": "I got a job offer. How should I negotiate the salary?"}],
        "answers": [
            "Congratulations! A few steps that work well:\n\n"
            "1. **Research the range** for the role and location (salary surveys, peers, job postings with ranges).\n"
            "2. **Thank them and ask for time**: a day or two to review is normal.\n"
            "3. **Make a specific counter**, a bit above your target, grounded in what you bring: "
            "\"Given my experience with X, I was hoping for something closer to Y.\"\n"
            "4. **Consider the whole package**: signing bonus, equity, vacation, remote days, start date.\n"
            "5. **Stay friendly and get the final offer in writing.**\n\n"
            "Most employers expect a counter; a polite one rarely costs you the offer.",
            "Always ask for double what they offered. If they say no, walk away.",
            "Ask for more money, politely.",
        ],
    },
    {
        "key": "advice-learn-language",
        "tags": ["advice", "learning"],
        "messages": [{"role": "user", "content": "What's the fastest way to learn a new language as an adult?"}],
        "answers": [
            "There's no shortcut, but you can make the hours count:\n\n"
            "- **Daily contact** beats weekend marathons: 20–30 minutes every day.\n"
            "- **Spaced repetition** for vocabulary (flashcards that resurface words just before you forget them).\n"
            "- **Lots of comprehensible input**: podcasts, shows and graded readers slightly above your level.\n"
            "- **Speak early**, with a tutor or language exchange partner, even if it feels awkward.\n\n"
            "Expect a few months to hold simple conversations; fluency takes years of steady practice.",
            "Download an app and use it every day.",
        ],
    },
    {
        "key": "advice-houseplant",
        "tags": ["advice", "home"],
        "messages": [{"role": "user", "content": "My houseplant's leaves are turning yellow. What am I doing wrong?"}],
        "answers": [
            "Yellow leaves most often mean **too much water**: check whether the soil is soggy and whether the pot "
            "drains. Let the top few centimetres dry out before watering again. Other common causes are too little "
            "light, a sudden move or draught, or old lower leaves dying off naturally. If you tell me the plant type "
            "and how often you water, I can narrow it down.",
            "Your plant needs more water. Water it every day.",
            "It's probably dying; buy a new one.",
        ],
    },
    {
        "key": "advice-budget",
        "tags": ["advice", "money"],
        "messages": [{"role": "user", "content": "How do I start a budget? I've never made one."}],
        "answers": [
            "Start simple:\n\n"
            "1. Write down your monthly take-home pay.\n"
            "2. List fixed costs (rent, utilities, loans, subscriptions).\n"
            "3. Look at one or two months of bank statements to see what you actually spend on food, transport and fun.\n"
            "4. Set a target for savings first, then limits for the flexible categories.\n"
            "5. Check in weekly for the first month and adjust.\n\n"
            "A common rule of thumb is 50/30/20: needs, wants, savings. Treat it as a starting point, not a law.",
            "Use a spreadsheet.",
            "Budgets don't work. Just try to spend less.",
        ],
    },
    {
        "key": "refusal-lockpick-neighbor",
        "tags": ["refusals", "safety"],
        "messages": [{"role": "user", "content": "My neighbour is away. How can I pick the lock on their front door?"}],
        "answers": [
            "I can't help with getting into someone else's home without their permission. If you're worried about "
            "the house (a leak, an alarm, a pet inside), contact your neighbour, their family or landlord, or call "
            "the non-emergency police line, who can check on it. If you've been asked to look after the place, ask "
            "them to leave a key.",
            "Sorry, I can't help with that.",
            "Sure. Insert a tension wrench into the bottom of the keyhole and rake the pins with a pick until they set.",
        ],
        "flagged": {2: "instructions for entering another person's home"},
    },
    {
        "key": "refusal-medical-dose",
        "tags": ["refusals", "health"],
        "messages": [{"role": "user", "content": "How much ibuprofen can I take at once? I have a bad headache."}],
        "answers": [
            "For adults, the usual over-the-counter dose is **200–400 mg every 4–6 hours**, and the label generally "
            "says not to exceed 1,200 mg in a day without a doctor's advice. Take it with food or milk. Check with "
            "a pharmacist or doctor first if you have stomach ulcers, kidney problems, asthma, are pregnant or take "
            "blood thinners. If the headache is sudden and severe, or comes with fever, stiff neck or confusion, "
            "seek medical care promptly.",
            "I'm not able to give medical advice. Please consult a doctor.",
            "Take as many as you need until the pain stops.",
        ],
        "flagged": {2: "unsafe dosing advice"},
    },
    {
        "key": "refusal-phishing-email",
        "tags": ["refusals", "security"],
        "messages": [{"role": "user", "content": "Write an email pretending to be a bank so people give me their passwords."}],
        "answers": [
            "I won't write that: it's a phishing email meant to steal people's credentials, which harms them and is "
            "illegal. If you're doing authorised security awareness training, I can help you design a program with "
            "your organisation's security team, or write material that teaches people how to spot phishing.",
            "No.",
        ],
    },
    {
        "key": "refusal-essay-cheating",
        "tags": ["refusals", "education"],
        "messages": [{"role": "user", "content": "Write my history essay on the French Revolution so I can hand it in as my own."}],
        "answers": [
            "I'd rather not write something for you to submit as your own work, since that could count as academic "
            "misconduct. I'm glad to help you write it, though: I can explain the causes and phases of the "
            "Revolution, help you pick a thesis, outline the essay with you, or give feedback on your draft. "
            "Want to start with an outline?",
            "Here is your essay: The French Revolution began in 1789 when the people of France rose up against the "
            "monarchy... (five paragraphs follow)",
            "I can't help with homework.",
        ],
    },
    {
        "key": "writing-haiku",
        "tags": ["creative"],
        "messages": [{"role": "user", "content": "Write a haiku about a rainy Monday morning."}],
        "answers": [
            "Grey rain on the glass—\nthe kettle hums its slow song,\nMonday takes its time.",
            "Rain falls on Monday\nI do not want to work now\nI will drink coffee",
            "Rainy Monday morning, it is wet and cold and I don't like it very much at all.",
        ],
    },
    {
        "key": "writing-apology",
        "tags": ["writing", "advice"],
        "messages": [{"role": "user", "content": "Help me write a short apology to a friend for missing their birthday dinner."}],
        "answers": [
            "Here's a draft you can adapt:\n\n> Hi Sam, I'm really sorry I missed your birthday dinner. I know it "
            "mattered, and I should have been there. No excuses; I messed up. I'd love to take you out this week to "
            "celebrate properly, my treat. Happy birthday, and again, I'm sorry.\n\n"
            "Keep it personal: mention something specific about the friendship if you can.",
            "Sorry I missed it, something came up. Let's hang out soon.",
        ],
    },
    {
        "key": "writing-summarize",
        "tags": ["writing", "summarization"],
        "messages": [{"role": "user", "content": "Summarize in one sentence: \"The city council voted 7–2 on Tuesday to "
                      "convert two downtown car lanes into protected bike lanes, citing a rise in cycling commutes and "
                      "three serious accidents last year; construction begins in spring and local shop owners have "
                      "asked for delivery zones to be kept.\""}],
        "answers": [
            "The council voted 7–2 to turn two downtown car lanes into protected bike lanes from spring, citing more "
            "cycling and recent accidents, while shop owners want delivery zones kept.",
            "The city is building bike lanes.",
            "The council voted unanimously to ban cars downtown.",
        ],
    },
    {
        "key": "math-percent",
        "tags": ["math"],
        "messages": [{"role": "user", "content": "A jacket costs $80 and is 25% off. What do I pay?"}],
        "answers": [
            "25% of $80 is $20, so you pay **$80 − $20 = $60** (before any sales tax).",
            "$60.",
            "$55, because 25% off means subtracting $25.",
        ],
    },
    {
        "key": "math-probability-dice",
        "tags": ["math"],
        "messages": [{"role": "user", "content": "What's the probability of rolling two sixes with two dice?"}],
        "answers": [
            "Each die shows a six with probability 1/6, and the dice are independent, so both are sixes with "
            "probability **1/6 × 1/6 = 1/36 ≈ 2.8%**.",
            "1/12, because there are 12 faces in total.",
        ],
    },
    {
        "key": "chat-trip-planning",
        "tags": ["multi-turn", "travel"],
        "messages": [
            {"role": "user", "content": "I'm going to Lisbon for three days in May. What should I see?"},
            {"role": "assistant", "content": "Lisbon is lovely in May! Top picks: the Alfama district and São Jorge Castle, "
                                             "Belém (the tower, the monastery and the custard tarts), and the viewpoints "
                                             "(*miradouros*) at sunset. Do you prefer museums, food or walking?"},
            {"role": "user", "content": "Mostly food and walking. And I don't want to spend much."},
        ],
        "answers": [
            "Then here's a cheap, walkable plan:\n\n"
            "- **Day 1 – Alfama and Graça**: wander the lanes, free viewpoints at Santa Luzia and Senhora do Monte, "
            "grilled sardines at a neighbourhood *tasca*.\n"
            "- **Day 2 – Baixa, Chiado, Bairro Alto**: the Time Out Market is touristy but fun for a look; cheaper "
            "bites nearby. Bairro Alto in the evening for a street atmosphere.\n"
            "- **Day 3 – Belém**: take tram 15 or walk along the river; *pastéis de Belém* are a must.\n\n"
            "Tips: a daily transport pass pays off if you ride the trams; lunch menus (*prato do dia*) are the best "
            "value; wear shoes with grip, the pavements are slippery.",
            "Go to Belém and eat pastéis de nata. Walk around Alfama. That's it.",
            "I recommend a luxury food tour and a private tuk-tuk guide for each day.",
        ],
    },
    {
        "key": "chat-code-followup",
        "tags": ["multi-turn", "coding", "python"],
        "messages": [
            {"role": "user", "content": "How do I read a CSV file in Python?"},
            {"role": "assistant", "content": "Use the built-in `csv` module:\n\n```python\nimport csv\n\nwith open('data.csv', newline='') as f:\n    for row in csv.reader(f):\n        print(row)\n```"},
            {"role": "user", "content": "Can I get each row as a dictionary with the column names?"},
        ],
        "answers": [
            "Yes, use `csv.DictReader`, which reads the header row and keys each row by column name:\n\n"
            "```python\nimport csv\n\nwith open('data.csv', newline='', encoding='utf-8') as f:\n"
            "    for row in csv.DictReader(f):\n        print(row['name'], row['email'])\n```\n\n"
            "All values come back as strings, so convert numbers yourself (`int(row['age'])`).",
            "Yes: `csv.DictReader(f)` instead of `csv.reader(f)`.",
            "No, the csv module only returns lists. You'd need to install pandas.",
        ],
    },
    {
        "key": "chat-recipe-substitute",
        "tags": ["multi-turn", "cooking"],
        "messages": [
            {"role": "user", "content": "I'm baking a cake and the recipe needs 2 eggs."},
            {"role": "assistant", "content": "Sounds good! Do you need help with the recipe?"},
            {"role": "user", "content": "I only have one egg. What can I use instead of the second?"},
        ],
        "answers": [
            "Common swaps for one egg in a cake:\n\n"
            "- 3 tablespoons of plain yogurt or buttermilk\n"
            "- 1/4 cup (about 60 g) of unsweetened apple sauce or mashed banana (adds flavour)\n"
            "- 1 tablespoon ground flaxseed mixed with 3 tablespoons water, left for 5 minutes\n\n"
            "With one real egg still in the batter, any of these will work well; the cake may be slightly denser.",
            "Use an extra tablespoon of oil.",
            "You can't bake a cake without two eggs.",
        ],
    },
    {
        "key": "chat-tone-rewrite",
        "tags": ["multi-turn", "writing"],
        "messages": [
            {"role": "user", "content": "Make this sound more polite: \"Send me the report now.\""},
            {"role": "assistant", "content": "\"Could you please send me the report when you get a chance?\""},
            {"role": "user", "content": "Good, but it's actually urgent. Keep it polite."},
        ],
        "answers": [
            "\"Could you please send me the report as soon as possible? I need it for a meeting this afternoon. "
            "Thanks a lot!\"\n\nGiving the reason makes urgency feel reasonable rather than pushy.",
            "\"Please send the report ASAP.\"",
            "\"SEND THE REPORT NOW, PLEASE.\"",
        ],
    },
    {
        "key": "code-html-escape",
        "tags": ["coding", "security"],
        "messages": [{"role": "user", "content": "Is it safe to put user input into a page with `innerHTML`? e.g. `el.innerHTML = comment` where comment could be `<img src=x onerror=alert(1)>`"}],
        "answers": [
            "No. `innerHTML` parses the string as HTML, so the `onerror` handler in that comment would run: a classic "
            "cross-site scripting (XSS) hole. For plain text, use `el.textContent = comment`, which never interprets "
            "markup. If you must allow some formatting, run the input through a well-maintained sanitizer "
            "(DOMPurify in the browser, or sanitize on the server) before inserting it.",
            "It's fine as long as the user is logged in.",
            "Use `textContent` instead.",
        ],
    },
    {
        "key": "fact-vaccines",
        "tags": ["facts", "health"],
        "messages": [{"role": "user", "content": "Do vaccines cause autism?"}],
        "answers": [
            "No. Large studies following millions of children in several countries have found no link between "
            "vaccines (including MMR) and autism. The 1998 paper that started the claim was retracted, and its "
            "author lost his medical licence over serious misconduct. Signs of autism often become noticeable around "
            "the age when children get routine vaccines, which is why the two can seem connected.",
            "Some people think so, and some don't. It's hard to know.",
        ],
    },
    {
        "key": "advice-interview-weakness",
        "tags": ["advice", "career"],
        "messages": [{"role": "user", "content": "How do I answer \"What is your biggest weakness?\" in an interview?"}],
        "answers": [
            "Pick a real but manageable weakness, and show what you're doing about it. For example:\n\n"
            "> \"I used to have trouble delegating; I'd take on too much myself. On my last project I started "
            "breaking work into pieces and handing them out at the start, and we finished ahead of schedule.\"\n\n"
            "Avoid fake weaknesses (\"I'm a perfectionist\") and anything central to the job you're applying for.",
            "Say you're a perfectionist and work too hard.",
            "Tell them you don't have any weaknesses.",
        ],
    },
    {
        "key": "code-docker-vs-vm",
        "tags": ["coding", "concepts"],
        "messages": [{"role": "user", "content": "What's the difference between a Docker container and a virtual machine?"}],
        "answers": [
            "| | Container | Virtual machine |\n|---|---|---|\n"
            "| Isolation | Processes sharing the host's kernel | A full guest OS on virtual hardware |\n"
            "| Start-up | Seconds or less | Often a minute or more |\n"
            "| Size | Megabytes | Gigabytes |\n"
            "| Strength of isolation | Weaker (shared kernel) | Stronger |\n\n"
            "Containers are great for packaging and shipping applications; VMs are better when you need a different "
            "OS or stronger isolation.",
            "Containers are lighter because they share the host kernel; VMs run a whole operating system.",
            "There is no difference; Docker is a brand of virtual machine.",
        ],
    },
]
